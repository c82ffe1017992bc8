"""One label per item (classification), or which of two responses is better (preference)."""

from typing import Any, Literal

from agent.guidelines import Guideline
from agent.records import Item
from agent.tasks.parsing import match_choice
from agent.tasks.voting import plurality


def annotation(guideline: Guideline) -> Any:
    return Literal[tuple(guideline.label_names)]


def normalize(guideline: Guideline, value: Any, item: Item | None) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if guideline.task == "preference" and isinstance(value, str):
        value = _preference_words(value, guideline.label_names)
    return match_choice(value, guideline.label_names)


def _preference_words(value: str, labels: list[str]) -> str:
    """'Response A', 'response_b', 'Assistant B' -> 'A' / 'B' when the labels are A and B."""
    words = value.strip().replace("_", " ").split()
    if len(words) == 2 and words[0].lower() in ("response", "assistant", "answer", "option"):
        return words[1]
    return value


def canonical(guideline: Guideline, label: Any) -> str:
    return label


def aggregate(guideline: Guideline, labels: list[Any]) -> tuple[str, float]:
    return plurality(labels, guideline.label_names)
