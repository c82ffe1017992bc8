"""What the database holds: counts by route, reviews, cost."""

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from agent.costs import Costs, log_costs
from agent.store.db import read_only, transaction


@dataclass(frozen=True)
class GuidelineStatus:
    guideline_hash: str
    name: str
    task: str
    auto: int
    escalated: int
    waiting: int
    final_labels: int
    reviewed_items: int
    cost_usd: float
    escalation_reasons: dict[str, int]


@dataclass(frozen=True)
class LogStatus:
    """`labelagent status`; `--json` prints its fields in this order."""

    db: str
    items: int
    drafts: int
    failed_drafts: int
    cost_usd: float
    runs: int
    reviews: int
    waiting: int
    guidelines: list[GuidelineStatus]
    costs: Costs


def status(db: str | Path) -> LogStatus:
    with read_only(db), transaction(db) as con:
        guidelines = con.execute(
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
        escalated = con.execute(
            "SELECT guideline_hash, reasons FROM decisions WHERE route = 'escalated'"
        ).fetchall()
        totals = con.execute(
            "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM drafts),"
            " (SELECT count(*) FROM drafts WHERE error IS NOT NULL),"
            " (SELECT coalesce(sum(cost_usd), 0) FROM drafts), (SELECT count(*) FROM runs),"
            " (SELECT count(*) FROM reviews),"
            " (SELECT count(DISTINCT (item_id, guideline_hash)) FROM retries)"
        ).fetchone()
        costs = log_costs(con)
    by_reason = _reason_counts(escalated)
    return LogStatus(
        db=str(db),
        items=totals[0],
        drafts=totals[1],
        failed_drafts=totals[2],
        cost_usd=round(totals[3], 6),
        runs=totals[4],
        reviews=totals[5],
        waiting=totals[6],
        guidelines=[
            GuidelineStatus(
                guideline_hash=g[0],
                name=g[1],
                task=g[2],
                auto=g[3],
                escalated=g[4],
                waiting=g[8],
                final_labels=g[5],
                reviewed_items=g[6],
                cost_usd=round(g[7], 6),
                escalation_reasons=by_reason.get(g[0], {}),
            )
            for g in guidelines
        ],
        costs=costs,
    )


def _reason_counts(escalated: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Per guideline, how often each reason escalated an item, most first. Counted here rather
    than in SQL: DuckDB and PostgreSQL have no common way to unnest a JSON list."""
    counts: dict[str, Counter[str]] = {}
    for ghash, reasons in escalated:
        counts.setdefault(ghash, Counter()).update(json.loads(reasons))
    return {ghash: dict(counter.most_common()) for ghash, counter in counts.items()}
