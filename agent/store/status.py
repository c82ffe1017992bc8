"""The statements behind `labelagent status`: what the log holds, in all and per guideline."""

import json
from collections import Counter
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
    """Escalated decisions per guideline and reason, most first. Counted here rather than in
    SQL: DuckDB and PostgreSQL have no common way to unnest a JSON list."""
    counts: Counter[tuple[str, str]] = Counter()
    escalated = con.execute(
        "SELECT guideline_hash, reasons FROM decisions WHERE route = 'escalated'"
    ).fetchall()
    for guideline_hash, reasons in escalated:
        counts.update((guideline_hash, reason) for reason in json.loads(reasons))
    return [ReasonCount(g, reason, n) for (g, reason), n in counts.most_common()]


def log_totals(con: DuckDBPyConnection) -> LogTotals:
    row = con.execute(
        "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM drafts),"
        " (SELECT count(*) FROM drafts WHERE error IS NOT NULL),"
        " (SELECT coalesce(sum(cost_usd), 0) FROM drafts), (SELECT count(*) FROM runs),"
        " (SELECT count(*) FROM reviews),"
        " (SELECT count(DISTINCT (item_id, guideline_hash)) FROM retries)"
    ).fetchone()
    return LogTotals(*row)
