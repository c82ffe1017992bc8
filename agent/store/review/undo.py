"""The statements behind undo: the reviewer's last review, and who came after it."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from duckdb import DuckDBPyConnection


@dataclass(frozen=True)
class OwnReview:
    review_id: int
    older_than_lease: bool


def last_own_review(
    con: DuckDBPyConnection, reviewer: str, item_id: str, guideline_hash: str, lease: timedelta
) -> OwnReview | None:
    """The reviewer's latest review of the item made in the app (not an adjudication), and
    whether it is older than `lease` by the database's clock, which also stamped it."""
    rows = con.execute(
        "SELECT review_id, created_at < CAST(current_timestamp AS TIMESTAMP) - ? FROM reviews"
        " WHERE item_id = ? AND guideline_hash = ? AND reviewer = ? AND source = 'review_ui'"
        " AND action <> 'adjudicate' ORDER BY review_id DESC LIMIT 1",
        [lease, item_id, guideline_hash, reviewer],
    ).fetchall()
    return OwnReview(*rows[0]) if rows else None


def later_reviewer(
    con: DuckDBPyConnection, item_id: str, guideline_hash: str, review_id: int, reviewer: str
) -> str | None:
    """Someone other than `reviewer` who reviewed the item after review `review_id`."""
    rows = con.execute(
        "SELECT reviewer FROM reviews WHERE item_id = ? AND guideline_hash = ?"
        " AND review_id > ? AND reviewer <> ? ORDER BY review_id LIMIT 1",
        [item_id, guideline_hash, review_id, reviewer],
    ).fetchall()
    return rows[0][0] if rows else None


def other_holder(
    con: DuckDBPyConnection, item_id: str, guideline_hash: str, reviewer: str, moment: datetime
) -> str | None:
    """Someone other than `reviewer` with a live claim on the item at `moment`."""
    rows = con.execute(
        "SELECT reviewer FROM claims WHERE item_id = ? AND guideline_hash = ?"
        " AND reviewer <> ? AND expires_at >= ?",
        [item_id, guideline_hash, reviewer, moment],
    ).fetchall()
    return rows[0][0] if rows else None


def delete_review(con: DuckDBPyConnection, review_id: int) -> None:
    con.execute("DELETE FROM reviews WHERE review_id = ?", [review_id]).fetchall()
