"""Character spans of one text field, each with a label. The model copies the span's text; the
offsets are found in the item, so a span that is not in the text is an invalid answer."""

from typing import Any, Literal

from pydantic import BaseModel, create_model
from pydantic.json_schema import SkipJsonSchema

from labelagent.errors import GuidelineError
from labelagent.guidelines import Guideline
from labelagent.records import Item
from labelagent.tasks.base import BaseTask, LabelKind, ReviewForm
from labelagent.tasks.parsing import match_choice
from labelagent.tasks.voting import membership_majority

# Spans copy text from the item, so their answer's bound grows with it (tokens <= UTF-8 bytes).
SPANS_BASE_TOKENS = 600


class SpansTask(BaseTask):
    name = "spans"
    kind: LabelKind = "spans"
    review = ReviewForm(
        editor="span_picker",
        keys_pick_labels=False,
        missing_answer="Write the spans first, or choose No entities (N) if the text has none.",
    )
    min_labels = 1

    def front_matter(self, meta: dict, fields: list[str], path: str) -> dict[str, Any]:
        if len(fields) != 1:
            raise GuidelineError(
                f"{path}: a spans guideline marks one text field; 'fields' has {fields}"
            )
        return {}

    def annotation(self, guideline: Guideline) -> Any:
        """The model sees text and label only; start and end are filled in by `normalize`."""
        span = create_model(
            "Span",
            text=(str, ...),
            label=(Literal[tuple(guideline.label_names)], ...),
            start=(SkipJsonSchema[int | None], None),
            end=(SkipJsonSchema[int | None], None),
        )
        return list[span]

    def normalize(
        self, guideline: Guideline, value: Any, item: Item | None
    ) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise ValueError("expected a list of spans, each with text and label")
        text = _item_text(guideline, item)
        spans, taken = [], set()
        for entry in value:
            if not isinstance(entry, dict) or "text" not in entry or "label" not in entry:
                raise ValueError(f"each span needs text and label, got {entry!r}")
            label = match_choice(entry["label"], guideline.label_names)
            needle = str(entry["text"]).strip()
            start = _given(text, needle, entry, taken)
            if start is None:
                start = _find(text, needle, taken) if text is not None else entry.get("start")
            if start is None:
                raise ValueError(f"span text {entry['text']!r} does not appear in the item's text")
            end = start + len(needle)
            taken.add((start, end))
            spans.append(
                {
                    "start": start,
                    "end": end,
                    "label": label,
                    "text": text[start:end] if text else entry["text"],
                }
            )
        return sorted(spans, key=lambda s: (s["start"], s["end"], s["label"]))

    def read_imported(self, guideline: Guideline, value: Any, item: Item) -> Any:
        """Imported spans may give only their offsets: their text is the item's there."""
        if isinstance(value, list):
            text = str(item.fields.get(guideline.fields[0], ""))
            value = [
                {**s, "text": text[s["start"] : s["end"]]}
                if isinstance(s, dict) and "text" not in s and "start" in s
                else s
                for s in value
            ]
        return self.normalize(guideline, value, item)

    def canonical(self, guideline: Guideline, label: Any) -> list[dict[str, Any]]:
        return [s.model_dump() if isinstance(s, BaseModel) else dict(s) for s in label]

    def aggregate(
        self, guideline: Guideline, labels: list[Any]
    ) -> tuple[list[dict[str, Any]], float]:
        kept, agreement = membership_majority(labels)
        return sorted(kept, key=lambda s: (s["start"], s["end"], s["label"])), agreement

    def max_tokens(self, item: Item) -> int:
        text = sum(len(str(value).encode()) for value in item.fields.values())
        return SPANS_BASE_TOKENS + 2 * text


def _item_text(guideline: Guideline, item: Item | None) -> str | None:
    return None if item is None else str(item.fields.get(guideline.fields[0], ""))


def _given(
    text: str | None, needle: str, entry: dict[str, Any], taken: set[tuple[int, int]]
) -> int | None:
    """The span's own start, when it has one and the text there is the span's text (a reviewer
    who selected the second "Paris" means the second)."""
    start = entry.get("start")
    if text is None or not needle or not isinstance(start, int) or isinstance(start, bool):
        return None
    fits = start >= 0 and text[start : start + len(needle)] == needle
    return start if fits and (start, start + len(needle)) not in taken else None


def _find(text: str, needle: str, taken: set[tuple[int, int]]) -> int | None:
    """The first occurrence not already used by an earlier span; case-insensitive as a fallback."""
    if not needle:
        return None
    for haystack, target in ((text, needle), (text.lower(), needle.lower())):
        start = haystack.find(target)
        while start != -1:
            if (start, start + len(needle)) not in taken:
                return start
            start = haystack.find(target, start + 1)
    return None
