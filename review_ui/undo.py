"""Undo: take back the reviewer's last decision while its item is still theirs.

An undone review is deleted, not marked: every reader of `reviews` (the claim conditions,
overlap, `final_labels`, agreement, calibration, the dashboard, exports) would otherwise have to
learn to skip undone rows, and one missed reader would count a label the reviewer took back.
Undo is allowed only within the lease and only while nobody else has claimed or reviewed the
item, so nothing can have been built on the deleted row yet. The item is claimed again for the
reviewer and comes back to their screen with what they had entered.
"""

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.guidelines import Guideline
from agent.review.queue import QueueItem
from agent.store.db import transaction
from agent.store.log import now
from agent.store.review import queue as queue_store
from agent.store.review import undo as store
from review_ui import hold, page_state, progress

LAST = "last_decision"
ENTERED = ("pick", "labels", "other", "spans", "spans-picked", "note")  # kept for an undo


class UndoRefused(ConfigError):
    """The decision cannot be taken back any more (too old, or the item moved on)."""


@dataclass
class Decision:
    item: QueueItem
    action: str
    entered: dict[str, Any] = field(default_factory=dict)  # the item's answer widgets' state


def act(
    state: MutableMapping[str, Any],
    db: str | Path,
    reviewer: str,
    guideline: Guideline,
    action: str,
) -> bool:
    """`page_state.act`, remembering the decision (and what was entered) so it can be undone."""
    item = page_state.current_item(state)
    if item is None:
        return False
    entered = _entered(state, guideline, item)
    if not page_state.act(state, db, reviewer, guideline, action):
        return False
    state[LAST] = Decision(item, action, entered)
    progress.count_done(state, action)
    return True


def undo(state: MutableMapping[str, Any], db: str | Path, reviewer: str) -> bool:
    """Ctrl+Z or U: delete the last review and put its item back on screen."""
    if not page_state.still_signed_in(state, db):
        return False
    state[page_state.FLASH] = state[page_state.NOTICE] = None
    last: Decision | None = state.pop(LAST, None)
    if last is None:
        state[page_state.FLASH] = "Nothing to undo: you have not decided anything since signing in."
        return False
    try:
        take_back(db, reviewer, last.item, hold.current(state).lease)
    except UndoRefused as e:
        state[page_state.FLASH] = str(e)
        return False
    batch = [i for i in state.get(page_state.BATCH) or [] if not _same(i, last.item)]
    state[page_state.BATCH] = [last.item, *batch]
    state.update(last.entered)
    progress.count_done(state, last.action, undone=True)
    state[page_state.NOTICE] = f"Undone: your {last.action} of {last.item.item_id}."
    return True


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


def _entered(state: Mapping[str, Any], guideline: Guideline, item: QueueItem) -> dict[str, Any]:
    """What the reviewer had entered for the item: its answer and note (not its buttons, whose
    state Streamlit does not let a script set)."""
    names = [*ENTERED, *(f"score-{dim}" for dim in guideline.dimensions)]
    keys = [page_state.widget_key(name, item) for name in names]
    return {key: state[key] for key in keys if key in state}


def _same(a: QueueItem, b: QueueItem) -> bool:
    return page_state.item_key(a) == page_state.item_key(b)
