"""The state behind spans picked by selecting text (review_ui/span_picker.py).

The picker sends its spans with exact offsets (code points, as Python indexes strings); they
become the answer and the `text | label` box, which stays as a fallback, shows them as lines.
While the box still shows exactly those lines the picked spans are the answer, offsets and all
(so the second "Paris" stays the second); once the reviewer edits the box, its lines are.
"""

from collections.abc import Mapping, MutableMapping
from typing import Any

from labelagent.guidelines import Guideline
from labelagent.records import Item
from labelagent.review.queue import QueueItem
from labelagent.review_ui.page_state import PICKED, parse_span_lines, spans_to_lines, widget_key
from labelagent.tasks import task_for

APPLIED = "spans-applied"


def applied(state: Mapping[str, Any], item: QueueItem, prefix: str = "") -> int:
    """How many of the picker's changes the answer holds (the picker ignores older spans)."""
    return int(state.get(widget_key(APPLIED, item, prefix)) or 0)


def apply_pick(
    state: MutableMapping[str, Any],
    item: QueueItem,
    text: str,
    value: Any,
    prefix: str = "",
) -> None:
    """The picker sent `value` ({"spans": [{start, end, label}], "n": k}): make it the answer."""
    if not isinstance(value, dict):
        return
    spans = [
        {
            "start": s["start"],
            "end": s["end"],
            "label": str(s["label"]),
            "text": text[s["start"] : s["end"]],
        }
        for s in value.get("spans") or []
        if isinstance(s.get("start"), int)
        and isinstance(s.get("end"), int)
        and 0 <= s["start"] < s["end"] <= len(text)
    ]
    state[widget_key(PICKED, item, prefix)] = spans
    state[widget_key("spans", item, prefix)] = spans_to_lines(spans)
    state[widget_key(APPLIED, item, prefix)] = int(value.get("n") or 0)


def shown(
    state: Mapping[str, Any], guideline: Guideline, item: QueueItem, prefix: str = ""
) -> list[dict[str, Any]]:
    """The spans the picker shows: the picked ones, or the box's lines placed in the text; a
    line that does not parse or is not in the text leaves the last good spans on show."""
    picked = state.get(widget_key(PICKED, item, prefix))
    lines = state.get(widget_key("spans", item, prefix)) or ""
    if picked is not None and spans_to_lines(picked) == lines:
        return picked
    try:
        return task_for(guideline).normalize(
            guideline, parse_span_lines(lines), Item(item_id=item.item_id, fields=item.fields)
        )
    except ValueError:
        return picked or []
