"""Progress: the queue, reviewers' pace, and how often people overturn the model."""

import streamlit as st

from labelagent.review.stats import progress
from labelagent.review_ui import page_state, render, views


def show(db: str) -> None:
    st.title("Dashboard")
    figures = progress(db)
    reviews = sum(n for _, n, _ in figures.per_reviewer)
    per_reviewer = [(render.visible_controls(r), n, s) for r, n, s in figures.per_reviewer]
    routes = dict(figures.routes)
    first, second, third, fourth = st.columns(4)
    first.metric("Reviews in the app", reviews)
    second.metric(
        "Median seconds per item",
        "—" if figures.median_seconds is None else f"{figures.median_seconds:.1f}",
    )
    third.metric(
        "Overturn rate", "—" if figures.overturn_rate is None else f"{figures.overturn_rate:.0%}"
    )
    total = sum(routes.values())
    fourth.metric("Escalated", f"{routes.get('escalated', 0)} of {total}" if total else "—")
    left, right = st.columns(2)
    with left:
        st.subheader("Waiting by reason", anchor=False)
        views.chart(figures.queue_by_reason, ["reason", "items"], horizontal=True)
        st.subheader("Reviews per reviewer", anchor=False)
        views.chart(per_reviewer, ["reviewer", "reviews"], horizontal=True)
        if per_reviewer:
            st.dataframe(
                [{"reviewer": r, "reviews": n, "median seconds": s} for r, n, s in per_reviewer],
                hide_index=True,
            )
    with right:
        st.subheader("Overturn rate by the model's label", anchor=False)
        overturns = [
            (render.visible_controls(page_state.json_label_text(label)), rate, n)
            for label, n, rate in figures.overturn_by_label
        ]
        views.chart(overturns, ["model label", "overturn rate"], horizontal=True)
        st.subheader("Reviews per hour", anchor=False)
        views.chart(figures.per_hour, ["hour", "reviews"])
        st.subheader("Auto and escalated", anchor=False)
        views.chart(figures.routes, ["route", "items"])


show(views.db_path())
