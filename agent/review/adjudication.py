"""Items whose reviewers disagree, or that a reviewer flagged, wait for an adjudicator."""

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.review.queue import (
    REVIEW_STATE,
    QueueFilter,
    QueueItem,
    _attach_rationales,
    _queue_item,
)
from agent.store.db import transaction
from agent.store.keys import audit_key


@dataclass
class Case:
    item: QueueItem
    reviews: list[dict[str, Any]]  # reviewer, action, label, note, blind, created_at
    why: str


def cases(db: str | Path, limit: int = 50, where: QueueFilter | None = None) -> list[Case]:
    """Flagged items first, then disagreements, among the items `where` lets through."""
    filters, params = (where or QueueFilter()).sql()
    with transaction(db) as con:
        rows = con.execute(
            f"""
            WITH state AS ({REVIEW_STATE})
            SELECT d.item_id, d.guideline_hash, g.name, g.task, i.fields, d.label, d.agreement,
                   d.confidence, d.votes, d.reasons, d.disagreeing_models, 0.0, 1, 0.0, false,
                   r.flagged, r.n_distinct
            FROM state r
            JOIN decisions d USING (item_id, guideline_hash)
            JOIN guidelines g USING (guideline_hash)
            JOIN items i USING (item_id)
            WHERE NOT r.adjudicated AND (r.flagged OR (r.n_labels >= 2 AND r.n_distinct > 1))
              {filters}
            ORDER BY r.flagged DESC, d.item_id
            LIMIT ?
            """,
            [*params, limit],
        ).fetchall()
        found, key = [], audit_key(con)
        for row in rows:
            item = _queue_item(row[:15], key)
            item.blind = False
            _attach_rationales(con, [item])
            reviews = [
                {
                    "reviewer": r[0],
                    "action": r[1],
                    "label": None if r[2] is None else json.loads(r[2]),
                    "note": r[3],
                    "blind": r[4],
                    "created_at": r[5],
                }
                for r in con.execute(
                    "SELECT reviewer, action, label, note, blind, created_at FROM reviews"
                    " WHERE item_id = ? AND guideline_hash = ? AND annotator_kind = 'human'"
                    " ORDER BY created_at",
                    [item.item_id, item.guideline_hash],
                ).fetchall()
            ]
            why = (
                "flagged by a reviewer" if row[15] else f"reviewers gave {row[16]} different labels"
            )
            found.append(Case(item=item, reviews=reviews, why=why))
    return found


SKIPPED, FILTER = "adjudication_skipped", "adjudication_filter"


def next_case(state: MutableMapping[str, Any], found: list[Case]) -> Case | None:
    """The first case the adjudicator has not skipped in this session."""
    skipped = state.get(SKIPPED) or set()
    return next((c for c in found if _key(c.item) not in skipped), None)


def skip(state: MutableMapping[str, Any], item: QueueItem) -> None:
    """S: leave the case for later (it comes back in the next session, or after Show skipped)."""
    state[SKIPPED] = {*(state.get(SKIPPED) or set()), _key(item)}


def _key(item: QueueItem) -> str:
    return f"{item.guideline_hash}:{item.item_id}"
