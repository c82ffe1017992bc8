"""The statements behind cost per trusted label (agent/costs.py): the log's settings
(`log_settings`) and what drafts, reviews and final labels add up to per guideline."""

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

# Reviews made in the app carry the seconds a reviewer spent on the item.
TIMED = "source = 'review_ui' AND seconds_on_screen IS NOT NULL"
# The pace of one review: a skip leaves the item to someone else, so it is not a review.
PACED = f"{TIMED} AND action <> 'skip'"


@dataclass(frozen=True)
class Setting:
    name: str
    value: str


@dataclass(frozen=True)
class GuidelineName:
    guideline_hash: str
    name: str


@dataclass(frozen=True)
class ReviewTotals:
    """A guideline's items (with a decision or a person's review) and its timed reviews."""

    items: int
    timed_reviews: int
    review_seconds: float
    median_seconds: float | None  # per review, skips left out


@dataclass(frozen=True)
class ModelSpend:
    model: str
    drafts: int
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class SourceSpend:
    """The final labels of one source and the model spend on their items."""

    source: str
    labels: int
    model_cost_usd: float


@dataclass(frozen=True)
class AgreementLevel:
    agreement: float
    decisions: int  # labelled decisions at exactly this agreement


def save_setting(con: DuckDBPyConnection, name: str, value: str, at: datetime) -> None:
    con.execute(
        "INSERT INTO log_settings (name, value, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
        " created_at = excluded.created_at",
        [name, value, at],
    )


def stored_settings(con: DuckDBPyConnection) -> list[Setting]:
    rows = con.execute("SELECT name, value FROM log_settings").fetchall()
    return [Setting(name, value) for name, value in rows]


def guideline_names(con: DuckDBPyConnection, guideline_hash: str | None) -> list[GuidelineName]:
    """Every guideline by name, or the one with this hash."""
    if guideline_hash is None:
        rows = con.execute("SELECT guideline_hash, name FROM guidelines ORDER BY name").fetchall()
    else:
        rows = con.execute(
            "SELECT guideline_hash, name FROM guidelines WHERE guideline_hash = $1 ORDER BY name",
            [guideline_hash],
        ).fetchall()
    return [GuidelineName(ghash, name) for ghash, name in rows]


def review_totals(con: DuckDBPyConnection, guideline_hash: str) -> ReviewTotals:
    row = con.execute(
        "SELECT (SELECT count(*) FROM (SELECT item_id FROM decisions WHERE guideline_hash = $1"
        "  UNION SELECT item_id FROM reviews WHERE guideline_hash = $1"
        "  AND annotator_kind = 'human') AS decided_or_reviewed),"
        f" (SELECT count(*) FROM reviews WHERE guideline_hash = $1 AND {TIMED}),"
        " (SELECT coalesce(sum(seconds_on_screen), 0) FROM reviews"
        f"  WHERE guideline_hash = $1 AND {TIMED}),"
        " (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_on_screen) FROM reviews"
        f"  WHERE guideline_hash = $1 AND {PACED})",
        [guideline_hash],
    ).fetchone()
    items, timed, seconds, median = row
    return ReviewTotals(items, timed, seconds, median)


def model_spend(con: DuckDBPyConnection, guideline_hash: str) -> list[ModelSpend]:
    rows = con.execute(
        "SELECT model, count(*), coalesce(sum(prompt_tokens), 0),"
        " coalesce(sum(cached_prompt_tokens), 0), coalesce(sum(completion_tokens), 0),"
        " coalesce(sum(cost_usd), 0) FROM drafts WHERE guideline_hash = $1"
        " GROUP BY model ORDER BY model",
        [guideline_hash],
    ).fetchall()
    return [ModelSpend(*row) for row in rows]


def spend_by_source(con: DuckDBPyConnection, guideline_hash: str) -> list[SourceSpend]:
    rows = con.execute(
        "SELECT f.source, count(*), coalesce(sum(d.cost), 0) FROM final_labels f"
        " LEFT JOIN (SELECT item_id, sum(cost_usd) AS cost FROM drafts WHERE guideline_hash = $1"
        "  GROUP BY item_id) d USING (item_id) WHERE f.guideline_hash = $1 GROUP BY f.source",
        [guideline_hash],
    ).fetchall()
    return [SourceSpend(*row) for row in rows]


def agreement_levels(con: DuckDBPyConnection, guideline_hash: str) -> list[AgreementLevel]:
    """The labelled decisions per agreement level, highest first."""
    rows = con.execute(
        "SELECT agreement, count(*) FROM decisions WHERE guideline_hash = $1"
        " AND label IS NOT NULL AND agreement IS NOT NULL GROUP BY agreement"
        " ORDER BY agreement DESC",
        [guideline_hash],
    ).fetchall()
    return [AgreementLevel(*row) for row in rows]
