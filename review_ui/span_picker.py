"""Spans by selecting text: a Streamlit component (components v1) whose static files are in
review_ui/components/spans/ (plain HTML, CSS and JavaScript: nothing is built or fetched). What a
pick does to the answer is in review_ui/span_selection.py."""

from functools import partial
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from labelagent.guidelines import Guideline
from labelagent.review.queue import QueueItem
from labelagent.review_ui import page_state, span_selection

FILES = Path(__file__).resolve().parent / "components" / "spans"
_picker = components.declare_component("span_picker", path=str(FILES))


def span_picker(
    guideline: Guideline, item: QueueItem, forward: dict[str, str], prefix: str = ""
) -> None:
    """The item's text with its spans marked and editable. `forward` maps keys pressed inside
    the picker (Enter, s, f, u, ?, ctrl+z) to the widget keys of the page's buttons they press,
    so the page's keys also work while the picker has the focus."""
    state = st.session_state
    text = page_state.field_text(item, guideline.fields[0])
    key = page_state.widget_key("spans-picker", item, prefix)
    _picker(
        text=text,
        spans=[
            {"start": s["start"], "end": s["end"], "label": s["label"]}
            for s in span_selection.shown(state, guideline, item, prefix)
        ],
        labels=guideline.label_names,
        colors=list(page_state.SPAN_COLORS),
        forward=forward,
        applied=span_selection.applied(state, item, prefix),
        key=key,
        default=None,
        on_change=partial(_picked, key, item, text, prefix),
    )


def _picked(key: str, item: QueueItem, text: str, prefix: str) -> None:
    span_selection.apply_pick(st.session_state, item, text, st.session_state.get(key), prefix)
