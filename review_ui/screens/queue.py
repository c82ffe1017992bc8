"""The review queue: one escalated item at a time from a claimed batch (five by default)."""

import streamlit as st

from labelagent.review.accounts import Reviewer
from labelagent.review.queue import QueueFilter
from labelagent.review_ui import filters as review_filters
from labelagent.review_ui import keys, page_state, progress, views

state = st.session_state


def filters(db: str, reviewer: Reviewer) -> None:
    where = review_filters.sidebar(db, state.get(page_state.FILTER) or QueueFilter())
    page_state.set_filter(state, db, reviewer.name, where)


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
    page_state.mark_shown(state, item)
    page_state.initial_answer_state(state, guideline, item)
    views.item_heading(item.item_id)
    held = len(state.get(page_state.BATCH) or [])
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
            key=page_state.widget_key("note", item),
            placeholder="optional; saved with any action",
        )
        views.action_buttons(db, reviewer, guideline, item)
    with right:
        views.evidence(item)
        views.guideline_panel(guideline, page_state.section_labels(state, guideline, item))


show(views.db_path(), page_state.signed_in(state))
