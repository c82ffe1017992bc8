"""What the database holds: counts by route, reviews, cost."""

from dataclasses import dataclass
from pathlib import Path

from labelagent.costs import Costs, log_costs
from labelagent.store import status as store
from labelagent.store.db import read_only, transaction


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
        guidelines = store.guideline_counts(con)
        reasons = store.escalation_reasons(con)
        totals = store.log_totals(con)
        costs = log_costs(con)
    by_reason: dict[str, dict[str, int]] = {}
    for r in reasons:
        by_reason.setdefault(r.guideline_hash, {})[r.reason] = r.count
    return LogStatus(
        db=str(db),
        items=totals.items,
        drafts=totals.drafts,
        failed_drafts=totals.failed_drafts,
        cost_usd=round(totals.cost_usd, 6),
        runs=totals.runs,
        reviews=totals.reviews,
        waiting=totals.waiting,
        guidelines=[
            GuidelineStatus(
                guideline_hash=g.guideline_hash,
                name=g.name,
                task=g.task,
                auto=g.auto,
                escalated=g.escalated,
                waiting=g.waiting,
                final_labels=g.final_labels,
                reviewed_items=g.reviewed_items,
                cost_usd=round(g.cost_usd, 6),
                escalation_reasons=by_reason.get(g.guideline_hash, {}),
            )
            for g in guidelines
        ],
        costs=costs,
    )
