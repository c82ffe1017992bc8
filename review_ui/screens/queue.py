"""The review queue: one escalated item at a time from a claimed batch (five by default)."""

import streamlit as st

from agent.review import progress, ui_logic
from agent.review.accounts import Reviewer
from agent.review.queue import QueueFilter
from review_ui import filters as review_filters
from review_ui import keys, views

state = st.session_state


def filters(db: str, reviewer: Reviewer) -> None:
    where = review_filters.sidebar(db, state.get(ui_logic.FILTER) or QueueFilter())
    ui_logic.set_filter(state, db, reviewer.name, where)


def show(db: str, reviewer: Reviewer | None) -> None:
    if reviewer is None:
        return
    filters(db, reviewer)
    item = progress.refill(state, db, reviewer.name)
    views.messages()
    keys.keys_button()
    if item is None:
        st.success("Nothing is waiting for you here (with these filters). Well done.")
        with st.container(horizontal=True):
            st.button("Check again", key="check-again")
            keys.undo_button(db, reviewer)
        return
    guideline = views.guideline_for(db, item)
    ui_logic.mark_shown(state, item)
    ui_logic.initial_answer_state(state, guideline, item)
    views.item_heading(item.item_id)
    held = len(state.get(ui_logic.BATCH) or [])
    st.caption(
        f"{progress.line(state)} · guideline {guideline.name} · {guideline.task} · "
        f"{held} in your batch"
    )
    left, right = st.columns([3, 2], gap="large")
    with left:
        views.item_fields(guideline, item)
        views.answer_widgets(guideline, item)
        st.text_input(
            "Note",
            key=ui_logic.widget_key("note", item),
            placeholder="optional; saved with any action",
        )
        views.action_buttons(db, reviewer, guideline, item)
    with right:
        views.evidence(item)
        views.guideline_panel(guideline, ui_logic.section_labels(state, guideline, item))


show(views.db_path(), ui_logic.signed_in(state))
