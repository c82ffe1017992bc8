"""The reviewer's progress line: "12 of 340 waiting for you · 58 done today".

Counted in the database when a batch is claimed (once per batch, so a key press within the batch
reads nothing), then kept up to date in the session as the reviewer decides and undoes.
"""

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelagent.review.queue import QueueFilter, QueueItem
from labelagent.review_ui import page_state
from labelagent.store.db import transaction
from labelagent.store.log import now
from labelagent.store.review import queue as store

PROGRESS = "progress"


@dataclass
class Progress:
    matching: int  # waiting for this reviewer among the items the filters let through
    waiting: int  # waiting for this reviewer, whatever the filters
    done_today: int  # their decisions since midnight (skips not counted)

    def line(self) -> str:
        shown = f"{self.matching:,} of {self.waiting:,}" if self.matching != self.waiting else ""
        waiting = shown or f"{self.waiting:,}"
        return f"{waiting} waiting for you · {self.done_today:,} done today"


def measure(db: str | Path, reviewer: str, where: QueueFilter | None = None) -> Progress:
    """Count, in one transaction, what `claim` could still give `reviewer` (with and without
    the filters) and what they decided today."""
    with transaction(db) as con:
        counts = store.waiting(con, reviewer, where or QueueFilter(), now())
        done = store.decided_today(con, reviewer)
    return Progress(matching=counts.matching, waiting=counts.waiting, done_today=done)


def refill(state: MutableMapping[str, Any], db: str | Path, reviewer: str) -> QueueItem | None:
    """`page_state.refill`, counting progress afresh whenever a new batch is claimed."""
    claiming = not state.get(page_state.BATCH)
    item = page_state.refill(state, db, reviewer)
    if claiming or PROGRESS not in state:
        state[PROGRESS] = measure(db, reviewer, state.get(page_state.FILTER))
    return item


def count_done(state: MutableMapping[str, Any], action: str, undone: bool = False) -> None:
    """One item decided (or, `undone`, given back): it no longer waits for this reviewer."""
    figures: Progress | None = state.get(PROGRESS)
    if figures is None:
        return
    step = -1 if undone else 1
    figures.matching = max(0, figures.matching - step)
    figures.waiting = max(0, figures.waiting - step)
    if action != "skip":
        figures.done_today = max(0, figures.done_today + step)


def line(state: Mapping[str, Any]) -> str | None:
    figures: Progress | None = state.get(PROGRESS)
    return None if figures is None else figures.line()
