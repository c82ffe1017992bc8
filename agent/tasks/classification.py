"""One label per item (classification), or which of two responses is better (preference)."""

from typing import Any, ClassVar, Literal

from labelagent.guidelines import Guideline
from labelagent.records import Item
from labelagent.tasks.base import PICK_FIRST, BaseTask, LabelKind, LocalScoring, ReviewForm
from labelagent.tasks.parsing import match_choice
from labelagent.tasks.voting import plurality

PREFERENCE_LABELS = {"A": "Response A is better.", "B": "Response B is better."}
PREFERENCE_FIELDS = ("prompt", "response_a", "response_b")


class ChoiceTask(BaseTask):
    name = "classification"
    kind: LabelKind = "choice"
    review = ReviewForm(editor="buttons", keys_pick_labels=True, missing_answer=PICK_FIRST)
    has_support = True
    local_scoring: LocalScoring | None = "label"
    student_learns = True
    answer_tokens = 400

    def annotation(self, guideline: Guideline) -> Any:
        return Literal[tuple(guideline.label_names)]

    def normalize(self, guideline: Guideline, value: Any, item: Item | None) -> str:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str):
            value = self.spelled_out(value)
        return match_choice(value, guideline.label_names)

    def spelled_out(self, value: str) -> str:
        """The label in an answer that spells it out in words of the task's own."""
        return value

    def canonical(self, guideline: Guideline, label: Any) -> str:
        return label

    def aggregate(self, guideline: Guideline, labels: list[Any]) -> tuple[str, float]:
        return plurality(labels, guideline.label_names)


class PreferenceTask(ChoiceTask):
    name = "preference"
    default_labels: ClassVar[dict[str, str]] = PREFERENCE_LABELS
    default_fields: ClassVar[tuple[str, ...]] = PREFERENCE_FIELDS
    review = ReviewForm(
        editor="buttons", keys_pick_labels=True, missing_answer=PICK_FIRST, side_by_side=True
    )
    paired_responses = True

    def spelled_out(self, value: str) -> str:
        """'Response A', 'response_b', 'Assistant B' -> 'A' / 'B'."""
        words = value.strip().replace("_", " ").split()
        if len(words) == 2 and words[0].lower() in ("response", "assistant", "answer", "option"):
            return words[1]
        return value
