"""Any number of labels per item."""

from typing import Any, Literal

from labelagent.guidelines import Guideline
from labelagent.records import Item
from labelagent.tasks.base import PICK_FIRST, BaseTask, LabelKind, ReviewForm
from labelagent.tasks.parsing import match_choice
from labelagent.tasks.voting import membership_majority


class MultilabelTask(BaseTask):
    name = "multilabel"
    kind: LabelKind = "choices"
    review = ReviewForm(editor="multiselect", keys_pick_labels=True, missing_answer=PICK_FIRST)

    def annotation(self, guideline: Guideline) -> Any:
        return list[Literal[tuple(guideline.label_names)]]

    def normalize(self, guideline: Guideline, value: Any, item: Item | None) -> list[str]:
        if isinstance(value, str):
            value = [] if value.strip().lower() in ("", "none", "[]") else value.split(",")
        if not isinstance(value, list):
            raise ValueError(f"expected a list of labels, got {value!r}")
        chosen = {match_choice(v, guideline.label_names) for v in value}
        return [name for name in guideline.label_names if name in chosen]

    def canonical(self, guideline: Guideline, label: Any) -> list[str]:
        return list(label)

    def aggregate(self, guideline: Guideline, labels: list[Any]) -> tuple[list[str], float]:
        kept, agreement = membership_majority(labels)
        return [name for name in guideline.label_names if name in kept], agreement
