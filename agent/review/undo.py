"""Undo: take back the reviewer's last decision while its item is still theirs.

An undone review is deleted, not marked: every reader of `reviews` (the claim conditions,
overlap, `final_labels`, agreement, calibration, the dashboard, exports) would otherwise have to
learn to skip undone rows, and one missed reader would count a label the reviewer took back.
Undo is allowed only within the lease and only while nobody else has claimed or reviewed the
item, so nothing can have been built on the deleted row yet. The item is claimed again for the
reviewer and comes back to their screen with what they had entered.
"""

from datetime import timedelta
from pathlib import Path

from labelagent.errors import ConfigError
from labelagent.review.queue import QueueItem
from labelagent.store.db import transaction
from labelagent.store.log import now
from labelagent.store.review import queue as queue_store
from labelagent.store.review import undo as store


class UndoRefused(ConfigError):
    """The decision cannot be taken back any more (too old, or the item moved on)."""


def take_back(
    db: str | Path,
    reviewer: str,
    item: QueueItem,
    lease: timedelta,
) -> None:
    """Delete `reviewer`'s review of `item` and claim the item for them again, in one
    transaction; refused when it is older than the lease or someone else has the item. The age
    is taken by the database's clock, which also stamped the review."""
    moment = now()
    key = (item.item_id, item.guideline_hash)
    with transaction(db) as con:
        found = store.last_own_review(con, reviewer, *key, lease)
        if found is None:
            raise UndoRefused(f"your review of {item.item_id} is not in the log any more")
        if found.older_than_lease:
            minutes = f"{lease.total_seconds() / 60:g}"
            raise UndoRefused(
                f"your review of {item.item_id} is more than {minutes} minutes old; "
                "it can no longer be undone"
            )
        other = store.later_reviewer(con, *key, found.review_id, reviewer) or store.other_holder(
            con, *key, reviewer, moment
        )
        if other is not None:
            raise UndoRefused(
                f"{other} has {item.item_id} now (reviewed or holding it); "
                "your review stays as it is"
            )
        store.delete_review(con, found.review_id)
        queue_store.put_claims(con, [key], reviewer, moment, lease)
