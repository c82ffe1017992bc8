"""The figures on the review dashboard."""

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelagent.store.db import transaction
from labelagent.store.review import stats as store
from labelagent.store.review.stats import Count, ReviewerPace


@dataclass
class Progress:
    queue_by_reason: list[Count]
    per_reviewer: list[ReviewerPace]
    per_hour: list[Count]  # hour (ISO), reviews
    median_seconds: float | None
    overturn_rate: float | None  # share of reviewed LLM labels a person changed
    overturn_by_label: list[tuple[str, int, float]]  # the model's label, reviews, overturn rate
    routes: list[Count]


def progress(db: str | Path) -> Progress:
    with transaction(db) as con:
        pending = store.waiting_by_reason(con)
        per_reviewer = store.pace_per_reviewer(con)
        per_hour = store.reviews_per_hour(con)
        median = store.median_seconds(con)
        overturn = overturns(store.reviewed_model_labels(con))
        routes = store.decisions_per_route(con)
    total = sum(n for _, n, _ in overturn)
    return Progress(
        queue_by_reason=pending,
        per_reviewer=per_reviewer,
        per_hour=per_hour,
        median_seconds=median,
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
