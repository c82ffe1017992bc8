"""The review pages' keys: Streamlit's button shortcuts (Enter, S, F, U, the numbers) and the one
key script of the page, review_ui/keys.js (? lists the keys, Ctrl+Z undoes, numbers reach the
span picker, and every key works wherever the focus is but in a text box)."""

from pathlib import Path

import streamlit as st

from labelagent.review.accounts import Reviewer
from labelagent.review_ui import undo

QUEUE_KEYS = [
    ("1 … 9", "pick a label (multilabel: add or remove it); spans: the label for a selection"),
    ("Enter", "save: the model's label, or the label you picked or edited"),
    ("S", "skip: leave the item to someone else"),
    ("F", "flag for an adjudicator (say why in the note)"),
    ("U or Ctrl+Z", "undo your last decision and bring its item back, while it is still yours"),
    ("?", "show these keys"),
]
SPAN_KEYS = [
    ("select, then 1 … 9", "mark the selection with that label"),
    ("1 … 9, then select", "selections get that label until Esc"),
    ("click a mark, then 1 … 9", "relabel it; Delete removes it"),
    ("Shift + arrows", "select with the keyboard once the text has the focus"),
]
# Keys pressed inside the span picker, and the buttons (widget keys) they press on the page.
QUEUE_FORWARD = {
    "Enter": "act-accept",
    "s": "act-skip",
    "f": "act-flag",
    "u": "undo",
    "ctrl+z": "undo",
    "?": "show-keys",
}
SCRIPT = Path(__file__).with_name("keys.js")


def install() -> None:
    """The page's key script; it installs itself once per browser tab, for every page."""
    st.html(f"<script>{SCRIPT.read_text()}</script>", unsafe_allow_javascript=True)


def keys_button() -> None:
    """The Keys button (?) in the sidebar."""
    with st.sidebar:
        if st.button("Keys (?)", key="show-keys", help="Show every key."):
            keys_dialog()


@st.dialog("Keys")
def keys_dialog() -> None:
    st.markdown(_table(QUEUE_KEYS))
    st.markdown("**Spans**")
    st.markdown(_table(SPAN_KEYS))
    st.caption("Keys do nothing while the cursor is in a text box (the note, the span lines).")


def undo_button(db: str, reviewer: Reviewer) -> None:
    st.button(
        "Undo (U)",
        key="undo",
        shortcut="U",
        help="Take back your last decision (also Ctrl+Z) while the item is still yours.",
        on_click=undo.undo,
        args=(st.session_state, db, reviewer.name),
    )


def _table(rows: list[tuple[str, str]]) -> str:
    return "| key | does |\n|---|---|\n" + "\n".join(f"| {k} | {d} |" for k, d in rows)
