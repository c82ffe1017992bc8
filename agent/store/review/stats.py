"""The statements behind the review dashboard's figures."""

from typing import NamedTuple

from duckdb import DuckDBPyConnection

# Reviews made in the app; a skip leaves the item to someone else, so it is not a review.
IN_APP = "source = 'review_ui' AND action <> 'skip'"


class Count(NamedTuple):
    key: str  # a reason, an hour (ISO) or a route
    count: int


class ReviewerPace(NamedTuple):
    reviewer: str
    reviews: int
    median_seconds: float | None  # per item


class LabelPair(NamedTuple):
    """A reviewed model label: the model's and the reviewer's label, as JSON text."""

    model: str
    human: str


def waiting_by_reason(con: DuckDBPyConnection) -> list[Count]:
    """Escalated items no person has labelled yet, per reason, most first."""
    rows = con.execute(
        "SELECT reason, count(*) FROM (SELECT unnest(CAST(d.reasons AS VARCHAR[])) AS reason"
        " FROM decisions d WHERE d.route = 'escalated' AND NOT EXISTS (SELECT 1 FROM reviews r"
        " WHERE r.item_id = d.item_id AND r.guideline_hash = d.guideline_hash"
        " AND r.label IS NOT NULL AND r.annotator_kind = 'human')) GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    return [Count(*row) for row in rows]


def pace_per_reviewer(con: DuckDBPyConnection) -> list[ReviewerPace]:
    rows = con.execute(
        "SELECT reviewer, count(*), median(seconds_on_screen) FROM reviews"
        f" WHERE {IN_APP} GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    return [ReviewerPace(*row) for row in rows]


def reviews_per_hour(con: DuckDBPyConnection) -> list[Count]:
    rows = con.execute(
        "SELECT strftime(date_trunc('hour', created_at), '%Y-%m-%d %H:00'), count(*)"
        f" FROM reviews WHERE {IN_APP} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return [Count(*row) for row in rows]


def median_seconds(con: DuckDBPyConnection) -> float | None:
    rows = con.execute(f"SELECT median(seconds_on_screen) FROM reviews WHERE {IN_APP}").fetchall()
    return rows[0][0] if rows else None


def reviewed_model_labels(con: DuckDBPyConnection) -> list[LabelPair]:
    rows = con.execute(
        "SELECT CAST(d.label AS VARCHAR), CAST(r.label AS VARCHAR)"
        " FROM reviews r JOIN decisions d USING (item_id, guideline_hash)"
        " WHERE r.label IS NOT NULL AND d.label IS NOT NULL AND r.source = 'review_ui'"
    ).fetchall()
    return [LabelPair(*row) for row in rows]


def decisions_per_route(con: DuckDBPyConnection) -> list[Count]:
    rows = con.execute("SELECT route, count(*) FROM decisions GROUP BY 1 ORDER BY 1").fetchall()
    return [Count(*row) for row in rows]
