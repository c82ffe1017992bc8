"""The figures on the review dashboard."""

from dataclasses import dataclass
from pathlib import Path

from agent.store.db import transaction


@dataclass
class Progress:
    queue_by_reason: list[tuple[str, int]]
    per_reviewer: list[tuple[str, int, float | None]]  # reviewer, reviews, median seconds per item
    per_hour: list[tuple[str, int]]  # hour (ISO), reviews
    median_seconds: float | None
    overturn_rate: float | None  # share of reviewed LLM labels a person changed
    overturn_by_label: list[tuple[str, int, float]]  # the model's label, reviews, overturn rate
    routes: list[tuple[str, int]]


def progress(db: str | Path) -> Progress:
    with transaction(db) as con:

        def rows(sql: str) -> list[tuple]:
            return con.execute(sql).fetchall()

        pending = rows(
            "SELECT reason, count(*) FROM (SELECT unnest(CAST(d.reasons AS VARCHAR[])) AS reason"
            " FROM decisions d WHERE d.route = 'escalated' AND NOT EXISTS (SELECT 1 FROM reviews r"
            " WHERE r.item_id = d.item_id AND r.guideline_hash = d.guideline_hash"
            " AND r.label IS NOT NULL AND r.annotator_kind = 'human')) GROUP BY 1 ORDER BY 2 DESC"
        )
        per_reviewer = rows(
            "SELECT reviewer, count(*), median(seconds_on_screen) FROM reviews"
            " WHERE source = 'review_ui' GROUP BY 1 ORDER BY 2 DESC"
        )
        per_hour = rows(
            "SELECT strftime(date_trunc('hour', created_at), '%Y-%m-%d %H:00'), count(*)"
            " FROM reviews WHERE source = 'review_ui' GROUP BY 1 ORDER BY 1"
        )
        median = rows("SELECT median(seconds_on_screen) FROM reviews WHERE source = 'review_ui'")
        overturn = rows(
            "SELECT CAST(d.label AS VARCHAR), count(*),"
            " avg(CASE WHEN CAST(r.label AS VARCHAR) <> CAST(d.label AS VARCHAR)"
            " THEN 1.0 ELSE 0 END)"
            " FROM reviews r JOIN decisions d USING (item_id, guideline_hash)"
            " WHERE r.label IS NOT NULL AND d.label IS NOT NULL AND r.source = 'review_ui'"
            " GROUP BY 1 ORDER BY 2 DESC"
        )
        routes = rows("SELECT route, count(*) FROM decisions GROUP BY 1 ORDER BY 1")
    total = sum(n for _, n, _ in overturn)
    return Progress(
        queue_by_reason=pending,
        per_reviewer=per_reviewer,
        per_hour=per_hour,
        median_seconds=median[0][0] if median else None,
        overturn_rate=sum(n * rate for _, n, rate in overturn) / total if total else None,
        overturn_by_label=overturn,
        routes=routes,
    )
