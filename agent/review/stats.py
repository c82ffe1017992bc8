"""The figures on the review dashboard."""

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# Reviews made in the app; a skip leaves the item to someone else, so it is not a review.
IN_APP = "source = 'review_ui' AND action <> 'skip'"


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
            f" WHERE {IN_APP} GROUP BY 1 ORDER BY 2 DESC"
        )
        per_hour = rows(
            "SELECT strftime(date_trunc('hour', created_at), '%Y-%m-%d %H:00'), count(*)"
            f" FROM reviews WHERE {IN_APP} GROUP BY 1 ORDER BY 1"
        )
        median = rows(f"SELECT median(seconds_on_screen) FROM reviews WHERE {IN_APP}")
        overturn = overturns(
            rows(
                "SELECT CAST(d.label AS VARCHAR), CAST(r.label AS VARCHAR)"
                " FROM reviews r JOIN decisions d USING (item_id, guideline_hash)"
                " WHERE r.label IS NOT NULL AND d.label IS NOT NULL AND r.source = 'review_ui'"
            )
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


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def overturns(pairs: list[tuple[str, str]]) -> list[tuple[str, int, float]]:
    """(the model's label, reviews, share the reviewer changed), most reviewed first, from
    (model's label, reviewer's label) JSON texts. Labels are compared as values: the same spans
    can be written with their keys in another order."""
    changed: dict[str, list[bool]] = defaultdict(list)
    for model, human in pairs:
        value = _value(model)
        changed[json.dumps(value, sort_keys=True)].append(_value(human) != value)
    found = [(label, len(flags), sum(flags) / len(flags)) for label, flags in changed.items()]
    return sorted(found, key=lambda row: (-row[1], row[0]))
