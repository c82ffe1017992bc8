"""The sidebar filters shared by the review queue and adjudication."""

import streamlit as st

from labelagent.review.queue import QueueFilter
from labelagent.review_ui import page_state, views


def _select(title: str, options: list[str], current: str | None, key: str, **kw: object) -> str:
    index = options.index(current) if current in options else None
    return st.selectbox(title, options, index=index, key=key, placeholder="all", **kw)


def sidebar(db: str, now: QueueFilter, prefix: str = "filter") -> QueueFilter:
    """The filters as set in the sidebar, starting from `now`."""
    options = views.filter_options(db)
    with st.sidebar:
        st.subheader("Filters")
        text = st.text_input(
            "Text contains",
            value=now.text or "",
            key=f"{prefix}-text",
            placeholder="any text",
            help="Only items whose text contains this (any field, any case). Enter applies it.",
        )
        return QueueFilter(
            guideline=_select(
                "Guideline", options.guidelines, now.guideline, f"{prefix}-guideline"
            ),
            label=_select(
                "Model label",
                options.labels,
                now.label,
                f"{prefix}-label",
                format_func=page_state.json_label_text,
            ),
            reason=_select(
                "Reason",
                options.reasons,
                now.reason,
                f"{prefix}-reason",
                format_func=lambda r: r.replace("_", " "),
            ),
            run_id=_select("Run", options.runs, now.run_id, f"{prefix}-run"),
            text=text.strip() or None,
        )
