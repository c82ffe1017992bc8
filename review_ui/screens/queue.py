"""The review queue: one escalated item at a time from a claimed batch of five."""

import streamlit as st

from agent.review import ui_logic
from agent.review.accounts import Reviewer
from agent.review.queue import QueueFilter
from review_ui import views

state = st.session_state


def _select(title: str, options: list[str], current: str | None, key: str, **kw: object) -> str:
    index = options.index(current) if current in options else None
    return st.selectbox(title, options, index=index, key=key, placeholder="all", **kw)


def filters(db: str, reviewer: Reviewer) -> None:
    options = views.filter_options(db)
    now = state.get(ui_logic.FILTER) or QueueFilter()
    with st.sidebar:
        st.subheader("Filters")
        where = QueueFilter(
            guideline=_select("Guideline", options.guidelines, now.guideline, "filter-guideline"),
            label=_select(
                "Model label",
                options.labels,
                now.label,
                "filter-label",
                format_func=ui_logic.json_label_text,
            ),
            reason=_select(
                "Reason",
                options.reasons,
                now.reason,
                "filter-reason",
                format_func=lambda r: r.replace("_", " "),
            ),
            run_id=_select("Run", options.runs, now.run_id, "filter-run"),
        )
    ui_logic.set_filter(state, db, reviewer.name, where)


def show(db: str, reviewer: Reviewer | None) -> None:
    if reviewer is None:
        return
    filters(db, reviewer)
    item = ui_logic.refill(state, db, reviewer.name)
    views.messages()
    if item is None:
        st.success("Nothing is waiting for you here (with these filters). Well done.")
        st.button("Check again", key="check-again")
        return
    guideline = views.guideline_for(db, item)
    ui_logic.mark_shown(state, item)
    ui_logic.initial_answer_state(state, guideline, item)
    views.item_heading(item.item_id)
    held = len(state.get(ui_logic.BATCH) or [])
    st.caption(f"guideline {guideline.name} · {guideline.task} · {held} in your batch")
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
