"""Integer scores on one or more named dimensions."""

import re
import statistics
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, create_model

from labelagent.errors import GuidelineError
from labelagent.guidelines import Guideline, Scale
from labelagent.records import Item
from labelagent.safe_text import shown
from labelagent.tasks.base import BaseTask, LabelKind, LocalScoring, ReviewForm
from labelagent.tasks.parsing import as_score

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RatingTask(BaseTask):
    name = "rating"
    kind: LabelKind = "scores"
    review = ReviewForm(
        editor="scores",
        keys_pick_labels=False,
        missing_answer="Give a score for every dimension first.",
    )
    min_labels = 0
    local_scoring: LocalScoring | None = "dimensions"

    def front_matter(self, meta: dict, fields: list[str], path: str) -> dict[str, Any]:
        """The `scale` and the `dimensions` it scores."""
        scale = meta.get("scale")
        if not isinstance(scale, dict) or not {"min", "max"} <= scale.keys():
            raise GuidelineError(f"{path}: a rating guideline needs 'scale: {{min: 1, max: 5}}'")
        low, high = scale["min"], scale["max"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise GuidelineError(
                f"{path}: scale min and max must be whole numbers, got {low!r}, {high!r}"
            )
        if low >= high:
            raise GuidelineError(f"{path}: scale min ({low}) must be below max ({high})")
        return {"scale": Scale(min=low, max=high), "dimensions": _dimensions(meta, path)}

    def definitions(self, guideline: Guideline) -> dict[str, str]:
        return guideline.dimensions

    def annotation(self, guideline: Guideline) -> type[BaseModel]:
        scale = guideline.scale
        fields = {
            name: (int, Field(ge=scale.min, le=scale.max, description=definition or name))
            for name, definition in guideline.dimensions.items()
        }
        return create_model("Scores", **fields)

    def normalize(self, guideline: Guideline, value: Any, item: Item | None) -> dict[str, int]:
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

    def canonical(self, guideline: Guideline, label: Any) -> dict[str, int]:
        return label.model_dump() if isinstance(label, BaseModel) else dict(label)

    def aggregate(self, guideline: Guideline, labels: list[Any]) -> tuple[dict[str, int], float]:
        """Per dimension the most common score (ties: the one nearest the median); agreement is
        the lowest per-dimension share."""
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


def _dimensions(meta: dict, path: str) -> dict[str, str]:
    dims = meta.get("dimensions")
    if isinstance(dims, list):
        repeated = [str(d) for n, d in enumerate(dims) if d in dims[:n]]
        if repeated:
            raise GuidelineError(f"{path}: dimension '{shown(repeated[0])}' is given twice")
        dims = {str(d): "" for d in dims}
    if not isinstance(dims, dict) or not dims:
        raise GuidelineError(
            f"{path}: a rating guideline needs 'dimensions' (name: what it scores)"
        )
    for name in dims:
        if not _IDENTIFIER.match(str(name)):
            raise GuidelineError(
                f"{path}: dimension {name!r} must be a plain name (letters, digits, underscores)"
            )
    return {str(k): "" if v is None else str(v) for k, v in dims.items()}
