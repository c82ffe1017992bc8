"""The statements behind adjudication: the cases waiting for it and their reviews."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from labelagent.store.review.queue import (
    ESCALATED_COLUMNS,
    ESCALATED_WIDTH,
    Escalated,
    QueueFilter,
    escalated,
)

# What an item's human reviews add up to, for adjudication.
REVIEW_STATE = """
SELECT item_id, guideline_hash,
       count(DISTINCT reviewer) FILTER (WHERE action IN ('accept', 'correct', 'import'))
           AS n_labels,
       count(DISTINCT label) FILTER (WHERE action IN ('accept', 'correct', 'import')) AS n_distinct,
       bool_or(action = 'flag') AS flagged,
       bool_or(action = 'adjudicate') AS adjudicated,
       list(DISTINCT reviewer) AS reviewers
FROM reviews WHERE annotator_kind = 'human' GROUP BY ALL
"""


@dataclass(frozen=True)
class CaseRow:
    decision: Escalated
    flagged: bool
    n_distinct: int  # how many different labels the reviewers gave


@dataclass(frozen=True)
class ReviewRow:
    reviewer: str
    action: str
    label: Any
    note: str | None
    blind: bool
    created_at: datetime


def cases(con: DuckDBPyConnection, where: QueueFilter, limit: int) -> list[CaseRow]:
    """Items a reviewer flagged or reviewers disagree on, not yet adjudicated; flagged first."""
    filters, params = where.sql()
    rows = con.execute(
        f"""
        WITH state AS ({REVIEW_STATE})
        SELECT {ESCALATED_COLUMNS}, r.flagged, r.n_distinct
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
    n = ESCALATED_WIDTH
    return [CaseRow(escalated(row[:n]), flagged=row[n], n_distinct=row[n + 1]) for row in rows]


def human_reviews(con: DuckDBPyConnection, item_id: str, guideline_hash: str) -> list[ReviewRow]:
    rows = con.execute(
        "SELECT reviewer, action, label, note, blind, created_at FROM reviews"
        " WHERE item_id = ? AND guideline_hash = ? AND annotator_kind = 'human'"
        " ORDER BY created_at",
        [item_id, guideline_hash],
    ).fetchall()
    return [
        ReviewRow(
            reviewer=reviewer,
            action=action,
            label=None if label is None else json.loads(label),
            note=note,
            blind=blind,
            created_at=created_at,
        )
        for reviewer, action, label, note, blind, created_at in rows
    ]
