"""The statements behind `labelagent status`: what the log holds, in all and per guideline."""

from dataclasses import dataclass

from duckdb import DuckDBPyConnection


@dataclass(frozen=True)
class GuidelineCounts:
    guideline_hash: str
    name: str
    task: str
    auto: int
    escalated: int
    final_labels: int
    reviewed_items: int  # items a person reviewed
    cost_usd: float
    waiting: int  # items with a retry pending


@dataclass(frozen=True)
class ReasonCount:
    guideline_hash: str
    reason: str
    count: int


@dataclass(frozen=True)
class LogTotals:
    items: int
    drafts: int
    failed_drafts: int
    cost_usd: float
    runs: int
    reviews: int
    waiting: int  # (item, guideline) pairs with a retry pending


def guideline_counts(con: DuckDBPyConnection) -> list[GuidelineCounts]:
    """Every guideline, by name."""
    rows = con.execute(
        "SELECT g.guideline_hash, g.name, g.task,"
        " count(d.item_id) FILTER (WHERE d.route = 'auto'),"
        " count(d.item_id) FILTER (WHERE d.route = 'escalated'),"
        " (SELECT count(*) FROM final_labels f WHERE f.guideline_hash = g.guideline_hash),"
        " (SELECT count(DISTINCT r.item_id) FROM reviews r"
        "  WHERE r.guideline_hash = g.guideline_hash AND r.annotator_kind = 'human'),"
        " (SELECT coalesce(sum(cost_usd), 0) FROM drafts x"
        "  WHERE x.guideline_hash = g.guideline_hash),"
        " (SELECT count(DISTINCT w.item_id) FROM retries w"
        "  WHERE w.guideline_hash = g.guideline_hash)"
        " FROM guidelines g LEFT JOIN decisions d USING (guideline_hash)"
        " GROUP BY g.guideline_hash, g.name, g.task ORDER BY g.name"
    ).fetchall()
    return [GuidelineCounts(*row) for row in rows]


def escalation_reasons(con: DuckDBPyConnection) -> list[ReasonCount]:
    """Escalated decisions per guideline and reason, most first."""
    rows = con.execute(
        "SELECT guideline_hash, reason, count(*) FROM"
        " (SELECT guideline_hash, unnest(CAST(reasons AS VARCHAR[])) AS reason FROM decisions"
        "  WHERE route = 'escalated') AS escalated GROUP BY guideline_hash, reason"
        " ORDER BY count(*) DESC"
    ).fetchall()
    return [ReasonCount(*row) for row in rows]


def log_totals(con: DuckDBPyConnection) -> LogTotals:
    row = con.execute(
        "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM drafts),"
        " (SELECT count(*) FROM drafts WHERE error IS NOT NULL),"
        " (SELECT coalesce(sum(cost_usd), 0) FROM drafts), (SELECT count(*) FROM runs),"
        " (SELECT count(*) FROM reviews),"
        " (SELECT count(DISTINCT (item_id, guideline_hash)) FROM retries)"
    ).fetchone()
    return LogTotals(*row)
