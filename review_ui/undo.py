"""Undo on the page: remember the reviewer's last decision and what they had entered, and on
Ctrl+Z or U take it back (agent/review/undo.py) and put the item back on screen with it."""

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelagent.guidelines import Guideline
from labelagent.review.queue import QueueItem
from labelagent.review.undo import UndoRefused, take_back
from labelagent.review_ui import hold, page_state, progress

LAST = "last_decision"
ENTERED = ("pick", "labels", "other", "spans", "spans-picked", "note")  # kept for an undo


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


def _entered(state: Mapping[str, Any], guideline: Guideline, item: QueueItem) -> dict[str, Any]:
    """What the reviewer had entered for the item: its answer and note (not its buttons, whose
    state Streamlit does not let a script set)."""
    names = [*ENTERED, *(f"score-{dim}" for dim in guideline.dimensions)]
    keys = [page_state.widget_key(name, item) for name in names]
    return {key: state[key] for key in keys if key in state}


def _same(a: QueueItem, b: QueueItem) -> bool:
    return page_state.item_key(a) == page_state.item_key(b)
