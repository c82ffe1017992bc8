"""Drawing helpers shared by the review app's pages. They only draw: what happens on a click is
in review_ui/page_state.py, wired up as `on_click` callbacks.

Text from items, models, reviewers and imports goes through `verbatim` (and the other helpers
built on review_ui/render.py), never through st.markdown, a caption, a title or a widget
label, which all read Markdown. Only the team's guideline is Markdown (`guideline_markdown`)."""

from typing import Any

import pandas as pd
import streamlit as st

from labelagent.guidelines import Guideline, parse_guideline
from labelagent.review.accounts import Reviewer
from labelagent.review.queue import QueueItem
from labelagent.review_ui import keys, page_state, render, undo
from labelagent.review_ui.sections import relevant_sections
from labelagent.review_ui.span_picker import span_picker
from labelagent.store.db import migrate
from labelagent.tasks import task_for

DB_KEY = "db"
# Preference items at 1280x800: a long prompt and long responses scroll inside fixed boxes, so
# both responses and the buttons under them stay on screen.
LONG_PROMPT, PROMPT_HEIGHT, RESPONSE_HEIGHT = 280, 90, 180
KEYS_HELP = (
    "**Enter** saves (the model's label unless you gave another) · **S** skips · "
    "**F** flags for an adjudicator · **U** undoes · **?** all keys"
)


def db_path() -> str:
    return st.session_state[DB_KEY]


@st.cache_resource(show_spinner=False)
def ensure_schema(db: str) -> bool:
    """Bring the database to the newest schema once per process."""
    migrate(db)
    return True


@st.cache_data(show_spinner=False)
def _guideline_content(db: str, guideline_hash: str) -> str:
    return page_state.guideline_content(db, guideline_hash)


def guideline_for(db: str, item: QueueItem) -> Guideline:
    """The guideline an item was labeled under (its text is read once, then cached)."""
    return parse_guideline(_guideline_content(db, item.guideline_hash), item.guideline_name)


@st.cache_data(ttl=30, show_spinner=False)
def filter_options(db: str) -> page_state.FilterOptions:
    return page_state.filter_options(db)


def verbatim(text: str) -> None:
    """Untrusted text exactly as written: whitespace kept, nothing read as Markdown or HTML."""
    st.html(render.verbatim_html(text))


def labelled(name: str, text: str) -> None:
    st.html(render.labelled_html(name, text))


def item_heading(item_id: str) -> None:
    st.html(render.verbatim_html(f"Item {item_id}", "h3", "margin:0;padding:0.5rem 0"))


def guideline_markdown(guideline: Guideline, markdown: str) -> None:
    st.markdown(render.guideline_markdown(markdown, guideline.remote_images))


def messages() -> None:
    """The last action's problem (a warning, never a traceback) or confirmation, shown once and
    verbatim (a message may quote an item's id or text)."""
    problem = st.session_state.pop(page_state.FLASH, None)
    done = st.session_state.pop(page_state.NOTICE, None)
    if problem:
        st.html(render.alert_html("warning", problem))
    if done:
        st.html(render.alert_html("success", done))


def account_sidebar(db: str, reviewer: Reviewer) -> None:
    with st.sidebar:
        st.markdown(f"Signed in as **{page_state.md_escape(reviewer.name)}** ({reviewer.role})")
        st.button(
            "Sign out",
            key="sign-out",
            on_click=page_state.sign_out,
            args=(st.session_state, db),
            help="Gives back the items you hold, so others can review them.",
        )


def text_field(title: str, text: str, height: int | None = None) -> None:
    st.caption(title)
    with st.container(border=True, height=height or "content"):
        verbatim(text)


def item_fields(
    guideline: Guideline, item: QueueItem, prefix: str = "", forward: dict[str, str] | None = None
) -> None:
    """The item as the guideline names its fields; preference responses side by side, spans
    with the model's spans marked (not when blind)."""
    fields, review = guideline.fields, task_for(guideline).review
    if review.side_by_side and len(fields) >= 3:
        for name in fields[:-2]:
            text = page_state.field_text(item, name)
            long = len(text) > LONG_PROMPT or text.count("\n") > 3
            text_field(
                f"{name} (scroll for more)" if long else name, text, PROMPT_HEIGHT if long else None
            )
        left, right = st.columns(2)
        for column, name, title in (
            (left, fields[-2], "Response A"),
            (right, fields[-1], "Response B"),
        ):
            with column:
                text = page_state.field_text(item, name)
                long = len(text) > LONG_PROMPT or text.count("\n") > 3
                text_field(f"{title} ({name})", text, RESPONSE_HEIGHT if long else None)
        return
    if review.editor == "span_picker":
        st.caption(fields[0] if item.blind else f"{fields[0]} (the model's spans marked)")
        span_picker(guideline, item, forward or keys.QUEUE_FORWARD, prefix)
        return
    for name in fields:
        text_field(name, page_state.field_text(item, name))


def label_buttons(guideline: Guideline, item: QueueItem, prefix: str = "") -> None:
    """Buttons `1 · label` … with number-key shortcuts; more labels in a select box."""
    state = st.session_state
    chosen = state.get(page_state.widget_key("labels", item, prefix)) or []
    mine = page_state.picked(state, item, prefix)
    quick = page_state.quick_labels(guideline, item)
    with st.container(horizontal=True):
        for number, label in enumerate(quick, start=1):
            selected = label == mine or label in chosen
            model = not item.blind and label == item.llm_label
            st.button(
                f"{number} · {label}",
                icon=":material/smart_toy:" if model else None,
                key=page_state.widget_key(f"label-{number}", item, prefix),
                shortcut=str(number),
                type="primary" if selected else "secondary",
                help=render.guideline_markdown(
                    ("The model's label. " if model else "") + guideline.labels.get(label, ""),
                    guideline.remote_images,
                ),
                on_click=page_state.pick,
                args=(state, guideline, item, label, prefix),
            )
    if len(guideline.label_names) > len(quick):
        key = page_state.widget_key("other", item, prefix)
        st.selectbox(
            "Any label",
            guideline.label_names,
            index=None,
            key=key,
            placeholder="type to search all labels",
            on_change=lambda: page_state.pick(state, guideline, item, state[key], prefix),
        )


def answer_widgets(guideline: Guideline, item: QueueItem, prefix: str = "") -> None:
    """Where the reviewer (or, with the adjudication prefix, the adjudicator) gives their own
    label, in the task's editor."""
    state = st.session_state
    editor = task_for(guideline).review.editor
    mine_title, labels_title = (
        ("Final label", "Final labels") if prefix else ("Your label", "Labels")
    )
    if editor == "buttons":
        label_buttons(guideline, item, prefix)
        mine = page_state.picked(state, item, prefix)
        if mine:
            st.markdown(f"{mine_title}: **{page_state.md_escape(mine)}** (Enter saves it)")
    elif editor == "multiselect":
        label_buttons(guideline, item, prefix)
        st.multiselect(
            labels_title, guideline.label_names, key=page_state.widget_key("labels", item, prefix)
        )
    elif editor == "scores":
        score_inputs(guideline, item, prefix)
    else:
        span_editor(guideline, item, prefix)


def score_inputs(guideline: Guideline, item: QueueItem, prefix: str = "") -> None:
    scale = guideline.scale
    columns = st.columns(len(guideline.dimensions))
    for column, (dim, definition) in zip(columns, guideline.dimensions.items(), strict=True):
        with column:
            st.number_input(
                f"{dim} ({scale.min} to {scale.max})",
                min_value=scale.min,
                max_value=scale.max,
                step=1,
                value=None,
                key=page_state.widget_key(f"score-{dim}", item, prefix),
                help=definition or None,
            )


def span_editor(guideline: Guideline, item: QueueItem, prefix: str = "") -> None:
    st.text_area(
        "Or type the spans, one per line: `text | label`",
        key=page_state.widget_key("spans", item, prefix),
        help="Labels: " + ", ".join(guideline.label_names) + ".",
    )
    st.checkbox(
        "No entities in this text",
        key=page_state.widget_key("no-spans", item, prefix),
        help="An empty list is not an answer: say so here when the text has no entities.",
    )


def action_buttons(db: str, reviewer: Reviewer, guideline: Guideline, item: QueueItem) -> None:
    state, review = st.session_state, task_for(guideline).review
    args = (state, db, reviewer.name, guideline)
    accept_help = (
        "Save the label you picked."
        if item.blind or item.llm_label is None
        else "Accept the model's label, or save the one you picked."
    )
    with st.container(horizontal=True):
        st.button(
            "Accept (Enter)",
            key="act-accept",
            type="primary",
            shortcut="Enter",
            help=accept_help,
            on_click=undo.act,
            args=(*args, "accept"),
        )
        st.button(
            "Skip (S)",
            key="act-skip",
            shortcut="S",
            help="Not for me: leave it to another reviewer.",
            on_click=undo.act,
            args=(*args, "skip"),
        )
        st.button(
            "Flag (F)",
            key="act-flag",
            shortcut="F",
            help="Send it to an adjudicator (say why in the note).",
            on_click=undo.act,
            args=(*args, "flag"),
        )
        if review.editor == "span_picker":
            st.button(
                "No entities (N)",
                key="act-no-spans",
                shortcut="N",
                help="The text has no entities (or take that back); Enter saves it.",
                on_click=page_state.toggle_no_spans,
                args=(state, item),
            )
        keys.undo_button(db, reviewer)
    numbers = "Keys: **1** to **9** pick a label · " if review.keys_pick_labels else "Keys: "
    st.caption(numbers + KEYS_HELP)


def evidence(item: QueueItem, queued: bool = True) -> None:
    """What the models said (and, in the queue, why the item came up). A blind item shows none
    of it."""
    if item.blind:
        where = st.session_state.get(page_state.FILTER)
        leak = (
            " (The Model label filter is on, so it is known anyway.)"
            if where and where.label
            else ""
        )
        st.info(
            "**Blind review**: the model's label, votes, confidence and rationales are hidden, "
            f"so your label stays independent.{leak}"
        )
        return
    labelled("Model's label:", page_state.label_text(item.llm_label))
    if queued:
        st.caption(f"Why here: {item.why}")
    votes(item)
    agreement = "—" if item.agreement is None else f"{item.agreement:.0%}"
    confidence = "—" if item.confidence is None else f"{item.confidence:.2f}"
    st.markdown(f"**Agreement** {agreement} · **mean stated confidence** {confidence}")
    if item.disagreeing_models:
        labelled("Models that disagreed:", ", ".join(item.disagreeing_models))
    if item.stage_reasons:
        st.markdown("**Cascade stages**")
        st.text("\n".join(item.stage_reasons))
    if item.rationales:
        st.markdown("**Rationales**")
        st.html(render.list_html(item.rationales))


def votes(item: QueueItem) -> None:
    rows = [(render.visible_controls(label), n) for label, n in page_state.vote_rows(item.votes)]
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["label", "votes"])
    if all(len(label) <= 40 for label, _ in rows):
        st.bar_chart(
            frame, x="label", y="votes", horizontal=True, sort="-votes", height=60 + 30 * len(rows)
        )
    else:
        st.dataframe(frame, hide_index=True)


def guideline_panel(guideline: Guideline, labels: list[str]) -> None:
    st.markdown(f"**Guideline `{guideline.name}`** ({guideline.task})")
    definitions = task_for(guideline).definitions(guideline)
    lines = [f"- **{page_state.md_escape(n)}**: {d}" for n, d in definitions.items()]
    if guideline.scale:
        lines.append(f"- scale {guideline.scale.min} to {guideline.scale.max}")
    guideline_markdown(guideline, "\n".join(lines))
    title = "Relevant section" + (f" ({', '.join(labels)})" if labels else "")
    st.caption(title)
    with st.container(border=True, height=360):
        section = relevant_sections(guideline.body, labels)
        guideline_markdown(guideline, page_state.demote_headings(section))
    with st.expander("Whole guideline"):
        guideline_markdown(guideline, guideline.body)


def chart(rows: list[tuple[Any, ...]], columns: list[str], **options: Any) -> None:
    """A bar chart of the first two columns of `rows`, or a note when there is nothing yet."""
    if not rows:
        st.caption("nothing yet")
        return
    frame = pd.DataFrame([r[: len(columns)] for r in rows], columns=columns)
    height = 80 + 28 * len(rows) if options.get("horizontal") else 260
    st.bar_chart(frame, x=columns[0], y=columns[1], height=height, **options)
