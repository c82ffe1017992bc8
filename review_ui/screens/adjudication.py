"""Adjudication: items reviewers disagreed on or flagged; the adjudicator sets the final label."""

import streamlit as st

from agent.review import render, ui_logic
from agent.review.accounts import Reviewer
from agent.review.adjudication import Case, cases
from review_ui import views

PREFIX = "adj-"
state = st.session_state


def case_view(db: str, adjudicator: Reviewer, case: Case) -> None:
    item = case.item
    guideline = views.guideline_for(db, item)
    ui_logic.initial_answer_state(state, guideline, item, PREFIX)
    views.item_heading(item.item_id)
    st.caption(f"guideline {guideline.name} · {guideline.task} · {case.why}")
    views.item_fields(guideline, item)
    st.markdown("**Reviews**")
    st.html(render.table_html(ui_logic.review_columns(case.reviews), ui_logic.REVIEW_ROWS))
    with st.expander("What the models said", expanded=True):
        views.evidence(item, queued=False)
    views.final_label_widgets(guideline, item, PREFIX)
    st.text_input("Note", key=ui_logic.widget_key("note", item, PREFIX))
    st.button(
        "Save final label",
        key=ui_logic.widget_key("save", item, PREFIX),
        type="primary",
        on_click=ui_logic.adjudicate,
        args=(state, db, adjudicator.name, guideline, item, PREFIX),
    )


def show(db: str, adjudicator: Reviewer | None) -> None:
    st.title("Adjudication")
    if adjudicator is None or not adjudicator.can_adjudicate:
        st.error("Only adjudicators can open this page.")
        return
    views.messages()
    found = cases(db)
    if not found:
        st.success("No disagreements or flags are waiting.")
        return
    st.caption(f"{len(found)} case(s): flagged first, then disagreements.")
    for number, case in enumerate(found):
        title = f"Case {number + 1} · {case.why}"  # a label reads Markdown: no item text here
        with st.expander(title, expanded=number == 0):
            case_view(db, adjudicator, case)


show(views.db_path(), ui_logic.signed_in(state))
