"""Items whose reviewers disagree, or that a reviewer flagged, wait for an adjudicator."""

from dataclasses import dataclass
from pathlib import Path

from labelagent.review.queue import QueueFilter, QueueItem, attach_rationales, queue_item
from labelagent.store.db import transaction
from labelagent.store.keys import audit_key
from labelagent.store.review import cases as store
from labelagent.store.review.cases import ReviewRow


@dataclass
class Case:
    item: QueueItem
    reviews: list[ReviewRow]
    why: str


def cases(db: str | Path, limit: int = 50, where: QueueFilter | None = None) -> list[Case]:
    """Flagged items first, then disagreements, among the items `where` lets through. An
    adjudicator sees everything: no case is blind."""
    found = []
    with transaction(db) as con:
        key = audit_key(con)
        for row in store.cases(con, where or QueueFilter(), limit):
            item = queue_item(row.decision, key, priority=0.0, blind_share=0.0)
            item.blind = False
            attach_rationales(con, [item])
            reviews = store.human_reviews(con, item.item_id, item.guideline_hash)
            why = (
                "flagged by a reviewer"
                if row.flagged
                else f"reviewers gave {row.n_distinct} different labels"
            )
            found.append(Case(item=item, reviews=reviews, why=why))
    return found
