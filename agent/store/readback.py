"""Whole-log reads and counts for the benchmarks (evals/benchmarks/), which check what a run
stored: every draft and decision as stored, and a few totals."""

from dataclasses import dataclass

from duckdb import DuckDBPyConnection


@dataclass(frozen=True)
class StoredDraft:
    item_id: str
    model: str
    label: str | None  # JSON; None when the draft failed
    error: str | None


@dataclass(frozen=True)
class DraftTokens:
    """One model's tokens on one item, over all its drafts."""

    item_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class DecidedLabel:
    item_id: str
    label: str | None  # JSON
    n_samples: int


@dataclass(frozen=True)
class DecisionCounts:
    items: int  # items with a decision
    labelled: int  # decisions with a label
    failed: int  # decisions escalated for failed samples


@dataclass(frozen=True)
class RowCounts:
    items: int
    decisions: int
    drafts: int
    reviews: int


@dataclass(frozen=True)
class DraftCost:
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_prompt_tokens: int | None
    cost_usd: float | None


@dataclass(frozen=True)
class BatchRun:
    """What a `label --batch` run left in the log."""

    decided: int
    decided_items: int
    batches: int
    batch_ids: int
    drafts: int
    duplicate_drafts: int  # (item, model, sample index) stored more than once
    batch_statuses: list[tuple[str, int]]
    stage_routes: list[tuple[int | None, str, int]]  # (stage, route, decisions)


def drafts_in_order(con: DuckDBPyConnection) -> list[StoredDraft]:
    """Every draft, by item and sample index."""
    rows = con.execute(
        "SELECT item_id, model, label, error FROM drafts ORDER BY item_id, sample_index"
    ).fetchall()
    return [StoredDraft(*row) for row in rows]


def draft_tokens(con: DuckDBPyConnection) -> list[DraftTokens]:
    rows = con.execute(
        "SELECT item_id, model, sum(prompt_tokens), sum(completion_tokens) FROM drafts"
        " GROUP BY item_id, model"
    ).fetchall()
    return [DraftTokens(*row) for row in rows]


def decided_labels(con: DuckDBPyConnection) -> list[DecidedLabel]:
    rows = con.execute("SELECT item_id, label, n_samples FROM decisions").fetchall()
    return [DecidedLabel(*row) for row in rows]


def decision_counts(con: DuckDBPyConnection) -> DecisionCounts:
    row = con.execute(
        "SELECT count(DISTINCT item_id), count(label),"
        " count(*) FILTER (WHERE reasons LIKE '%failed%') FROM decisions"
    ).fetchone()
    return DecisionCounts(*row)


def draft_count(con: DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM drafts").fetchone()[0]


def draft_spend(con: DuckDBPyConnection) -> float | None:
    """What every draft cost in all; None when there are none."""
    return con.execute("SELECT sum(cost_usd) FROM drafts").fetchone()[0]


def row_counts(con: DuckDBPyConnection) -> RowCounts:
    row = con.execute(
        "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM decisions),"
        " (SELECT count(*) FROM drafts), (SELECT count(*) FROM reviews)"
    ).fetchone()
    return RowCounts(*row)


def unreviewed_escalated(con: DuckDBPyConnection) -> int:
    """Escalated decisions whose item nobody has reviewed."""
    return con.execute(
        "SELECT count(*) FROM decisions d WHERE route = 'escalated' AND NOT EXISTS"
        " (SELECT 1 FROM reviews r WHERE r.item_id = d.item_id)"
    ).fetchone()[0]


def ping(con: DuckDBPyConnection) -> None:
    """The least a transaction can do: to time opening and closing the file."""
    con.execute("SELECT 1").fetchall()


def draft_costs(con: DuckDBPyConnection) -> list[DraftCost]:
    rows = con.execute(
        "SELECT model, prompt_tokens, completion_tokens, cached_prompt_tokens, cost_usd FROM drafts"
    ).fetchall()
    return [DraftCost(*row) for row in rows]


def batch_run(con: DuckDBPyConnection) -> BatchRun:
    def one(sql: str) -> tuple:
        return con.execute(sql).fetchone()

    decided, decided_items = one("SELECT count(*), count(DISTINCT item_id) FROM decisions")
    batches, batch_ids = one("SELECT count(*), count(DISTINCT batch_id) FROM batches")
    (drafts,) = one("SELECT count(*) FROM drafts")
    (duplicates,) = one(
        "SELECT count(*) FROM (SELECT item_id, model, sample_index FROM drafts"
        " GROUP BY item_id, model, sample_index HAVING count(*) > 1) AS repeated"
    )
    statuses = con.execute(
        "SELECT status, count(*) FROM batches GROUP BY status ORDER BY status"
    ).fetchall()
    routes = con.execute(
        "SELECT stage, route, count(*) FROM decisions GROUP BY stage, route ORDER BY stage, route"
    ).fetchall()
    return BatchRun(
        decided, decided_items, batches, batch_ids, drafts, duplicates, statuses, routes
    )
