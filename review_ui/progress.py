"""The reviewer's progress line: "12 of 340 waiting for you · 58 done today".

Counted in the database when a batch is claimed (once per batch, so a key press within the batch
reads nothing), then kept up to date in the session as the reviewer decides and undoes.
"""

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.review.queue import CLAIM_STATE, QueueFilter, QueueItem
from agent.store.db import transaction
from agent.store.log import now
from review_ui import page_state

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
    filters, params = (where or QueueFilter()).sql()
    with transaction(db) as con:
        waiting, matching = con.execute(
            f"""
            WITH state AS ({CLAIM_STATE})
            SELECT count(*), count(*) FILTER (WHERE true {filters})
            FROM decisions d
            JOIN guidelines g USING (guideline_hash)
            LEFT JOIN review_settings s USING (guideline_hash)
            LEFT JOIN state r USING (item_id, guideline_hash)
            LEFT JOIN claims c USING (item_id, guideline_hash)
            WHERE d.route = 'escalated'
              AND coalesce(r.n_labels, 0) < coalesce(s.overlap, 1)
              AND NOT coalesce(r.closed, false) AND NOT coalesce(r.reviewed_by_me, false)
              AND (c.reviewer IS NULL OR c.reviewer = ? OR c.expires_at < ?)
            """,
            [reviewer, *params, reviewer, now()],
        ).fetchall()[0]
        done = con.execute(
            "SELECT count(*) FROM reviews WHERE reviewer = ? AND source = 'review_ui'"
            " AND action <> 'skip' AND created_at >= CAST(current_date AS TIMESTAMP)",
            [reviewer],
        ).fetchall()[0][0]
    return Progress(matching=matching, waiting=waiting, done_today=done)


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
