"""Integer scores on one or more named dimensions."""

import statistics
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, create_model

from agent.guidelines import Guideline
from agent.records import Item
from agent.tasks.parsing import as_score


def annotation(guideline: Guideline) -> type[BaseModel]:
    scale = guideline.scale
    fields = {
        name: (int, Field(ge=scale.min, le=scale.max, description=definition or name))
        for name, definition in guideline.dimensions.items()
    }
    return create_model("Scores", **fields)


def normalize(guideline: Guideline, value: Any, item: Item | None) -> dict[str, int]:
    dimensions = list(guideline.dimensions)
    if not isinstance(value, dict):
        if len(dimensions) == 1:
            value = {dimensions[0]: value}
        else:
            raise ValueError(f"expected an object with scores for {', '.join(dimensions)}")
    by_lower = {str(k).strip().lower(): v for k, v in value.items()}
    missing = [d for d in dimensions if d.lower() not in by_lower]
    if missing:
        raise ValueError(f"no score for {', '.join(missing)}")
    scores = {d: as_score(by_lower[d.lower()], guideline.scale.max) for d in dimensions}
    low, high = guideline.scale.min, guideline.scale.max
    for name, score in scores.items():
        if not low <= score <= high:
            raise ValueError(f"{name} score {score} is outside the scale {low}..{high}")
    return scores


def canonical(guideline: Guideline, label: Any) -> dict[str, int]:
    return label.model_dump() if isinstance(label, BaseModel) else dict(label)


def aggregate(guideline: Guideline, labels: list[Any]) -> tuple[dict[str, int], float]:
    """Per dimension the most common score (ties: the one nearest the median); agreement is the
    lowest per-dimension share."""
    result, shares = {}, []
    for dim in guideline.dimensions:
        values = [label[dim] for label in labels]
        counts = Counter(values)
        top = max(counts.values())
        median = statistics.median(values)
        result[dim] = min(
            (v for v in counts if counts[v] == top), key=lambda v: (abs(v - median), v)
        )
        shares.append(top / len(values))
    return result, min(shares)
