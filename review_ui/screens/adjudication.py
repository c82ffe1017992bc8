"""Adjudication: items reviewers disagreed on or flagged, one at a time, with the queue's keys and
filters; the adjudicator's label is the final one."""

import streamlit as st

from labelagent.review.accounts import Reviewer
from labelagent.review.adjudication import Case, cases
from labelagent.review.queue import QueueFilter
from labelagent.review_ui import filters, keys, page_state, render, views

PREFIX = "adj-"
FORWARD = {"Enter": "adj-save", "s": "adj-skip", "?": "show-keys"}
state = st.session_state


def case_view(db: str, adjudicator: Reviewer, case: Case, waiting: int) -> None:
    item = case.item
    guideline = views.guideline_for(db, item)
    page_state.initial_answer_state(state, guideline, item, PREFIX)
    views.item_heading(item.item_id)
    st.caption(
        f"{waiting} case(s) waiting · guideline {guideline.name} · {guideline.task} · {case.why}"
    )
    left, right = st.columns([3, 2], gap="large")
    with left:
        views.item_fields(guideline, item, PREFIX, FORWARD)
        st.markdown("**Reviews**")
        st.html(render.table_html(page_state.review_columns(case.reviews), page_state.REVIEW_ROWS))
        views.answer_widgets(guideline, item, PREFIX)
        st.text_input("Note", key=page_state.widget_key("note", item, PREFIX))
        with st.container(horizontal=True):
            st.button(
                "Save final label (Enter)",
                key="adj-save",
                type="primary",
                shortcut="Enter",
                on_click=page_state.adjudicate,
                args=(state, db, adjudicator.name, guideline, item, PREFIX),
            )
            st.button(
                "Skip (S)",
                key="adj-skip",
                shortcut="S",
                on_click=page_state.skip_case,
                args=(state, item),
            )
    with right:
        views.evidence(item, queued=False)


def show(db: str, adjudicator: Reviewer | None) -> None:
    st.title("Adjudication")
    if adjudicator is None or not adjudicator.can_adjudicate:
        st.error("Only adjudicators can open this page.")
        return
    state[page_state.CASE_FILTER] = filters.sidebar(
        db, state.get(page_state.CASE_FILTER) or QueueFilter(), "adj-filter"
    )
    views.messages()
    keys.keys_button()
    found = cases(db, where=state[page_state.CASE_FILTER])
    case = page_state.next_case(state, found)
    if case is None:
        st.success("No disagreements or flags are waiting (with these filters).")
        if state.get(page_state.SKIPPED_CASES):
            st.button(
                "Show skipped cases",
                key="adj-unskip",
                on_click=state.pop,
                args=(page_state.SKIPPED_CASES,),
            )
        return
    case_view(db, adjudicator, case, len(found))


show(views.db_path(), page_state.signed_in(state))
