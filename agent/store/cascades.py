"""The statements behind a cascade's stages: the drafts its decided items were built from, read
back to route them again (`labelagent calibrate` on a cascade) or to plan the next run."""

from dataclasses import dataclass

from duckdb import DuckDBPyConnection


@dataclass(frozen=True)
class DecidedDraft:
    """A draft of a decided item; `label` is JSON text, None when the draft failed."""

    item_id: str
    model: str
    sample_index: int
    label: str | None
    confidence: float | None
    error: str | None


@dataclass(frozen=True)
class ModelDraws:
    model: str
    drafts: int


def decided_drafts(con: DuckDBPyConnection, guideline_hash: str, key: str) -> list[DecidedDraft]:
    """The drafts behind the decisions of `key` (a model or cascade key), by item, model and
    sample."""
    rows = con.execute(
        "SELECT x.item_id, x.model, x.sample_index, x.label, x.confidence, x.error"
        " FROM decisions d JOIN drafts x USING (item_id, guideline_hash, prompt_hash)"
        " WHERE d.guideline_hash = $1 AND d.model = $2"
        " ORDER BY x.item_id, x.model, x.sample_index",
        [guideline_hash, key],
    ).fetchall()
    return [DecidedDraft(*row) for row in rows]


def decision_count(con: DuckDBPyConnection, guideline_hash: str, key: str) -> int:
    return con.execute(
        "SELECT count(*) FROM decisions WHERE guideline_hash = $1 AND model = $2",
        [guideline_hash, key],
    ).fetchone()[0]


def draws_per_model(con: DuckDBPyConnection, guideline_hash: str, key: str) -> list[ModelDraws]:
    """How many drafts of each model the decisions of `key` were built from."""
    rows = con.execute(
        "SELECT x.model, count(*) FROM decisions d"
        " JOIN drafts x USING (item_id, guideline_hash, prompt_hash)"
        " WHERE d.guideline_hash = $1 AND d.model = $2 GROUP BY x.model",
        [guideline_hash, key],
    ).fetchall()
    return [ModelDraws(*row) for row in rows]
