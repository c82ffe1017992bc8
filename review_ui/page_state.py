"""What the review app does between drawing: its state, the reviewer's answer, each action.

Everything here works on a plain mapping (Streamlit's `st.session_state` in the app, a dict in
tests), so the app's pages only draw. Per-item state lives under keys that contain the item's
key, so nothing leaks from one item to the next and `finish` can drop it all.
"""

import argparse
import json
import math
import re
import time
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from labelagent.errors import ConfigError, LabelagentError
from labelagent.guidelines import Guideline
from labelagent.records import Item
from labelagent.review import sessions
from labelagent.review.accounts import Reviewer
from labelagent.review.adjudication import Case
from labelagent.review.queue import ClaimLost, QueueFilter, QueueItem, claim, release, submit
from labelagent.review.sessions import SignIn
from labelagent.review_ui import hold
from labelagent.store.db import transaction
from labelagent.store.review import queue as store
from labelagent.store.review.cases import ReviewRow
from labelagent.store.review.queue import FilterOptions
from labelagent.tasks import item_text, task_for

QUICK_KEYS = 9
DB_ENV = "LABELAGENT_DB"
BATCH, FLASH, NOTICE, FILTER, REVIEWER = "batch", "flash", "notice", "queue_filter", "reviewer"
PICKED = "spans-picked"  # spans picked by selecting text, with their offsets
TOKEN, CHECKED = "session_token", "session_checked"
SKIPPED_CASES, CASE_FILTER = "adjudication_skipped", "adjudication_filter"
SIGN_IN_PAGE, HOME_PAGE, ADJUDICATION_PAGE = "sign-in", "queue", "adjudication"
PAGES = (HOME_PAGE, ADJUDICATION_PAGE, "dashboard", "report")
SPAN_COLORS = ("#cfe2ff", "#ffe5b4", "#d1f2d9", "#f8d7da", "#e2d9f3", "#fff3b0", "#d0f0f0")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def resolve_db(argv: list[str], environ: Mapping[str, str]) -> str | None:
    """The database from `--db PATH` among the script's arguments, else from LABELAGENT_DB."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(argv)
    return known.db or environ.get(DB_ENV) or None


def md_escape(text: str) -> str:
    """Text shown through st.markdown exactly as written (no emphasis, links, LaTeX, colors)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def item_key(item: QueueItem) -> str:
    return f"{item.guideline_hash}:{item.item_id}"


def widget_key(name: str, item: QueueItem, prefix: str = "") -> str:
    return f"{prefix}{name}:{item_key(item)}"


def label_text(label: Any) -> str:
    """A label as a reviewer reads it: a name, names joined, scores, or spans."""
    if label is None:
        return "—"
    if isinstance(label, str):
        return label
    if isinstance(label, dict):
        return ", ".join(f"{k} {v}" for k, v in label.items())
    if isinstance(label, list) and not label:
        return "none"
    if isinstance(label, list) and all(isinstance(x, dict) for x in label):
        return "; ".join(f"{s.get('text', '')} → {s.get('label', '')}" for s in label)
    if isinstance(label, list):
        return ", ".join(str(x) for x in label)
    return str(label)


def json_label_text(text: str) -> str:
    """A label stored as JSON text, as a reviewer reads it."""
    try:
        return label_text(json.loads(text))
    except (TypeError, ValueError):
        return str(text)


def vote_rows(votes: Mapping[str, int]) -> list[tuple[str, int]]:
    """(label as read, count), most votes first; a key that is not JSON is shown as written."""
    rows = [(json_label_text(key), int(count)) for key, count in votes.items()]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def quick_labels(guideline: Guideline, item: QueueItem) -> list[str]:
    """The labels on number keys 1..9: the guideline's order when it has nine or fewer; else the
    labels the model voted for first (never for a blind item), then the guideline's order."""
    names = guideline.label_names
    if len(names) <= QUICK_KEYS or item.blind:
        return names[:QUICK_KEYS]
    voted: list[str] = []
    for key in sorted(item.votes, key=lambda k: -item.votes[k]):
        try:
            value = json.loads(key)
        except (TypeError, ValueError):
            continue
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str) and name in names and name not in voted:
                voted.append(name)
    return (voted + [n for n in names if n not in voted])[:QUICK_KEYS]


def spans_to_lines(spans: Any) -> str:
    """The `text | label` lines of the span editor."""
    if not isinstance(spans, list):
        return ""
    return "\n".join(f"{s.get('text', '')} | {s.get('label', '')}" for s in spans)


def parse_span_lines(text: str) -> list[dict[str, str]]:
    """`text | label` lines (the last `|` separates) as spans; blank lines are ignored."""
    spans = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "|" not in line:
            raise ValueError(f"line {number}: write the span as `text | label`")
        span_text, label = (part.strip() for part in line.rsplit("|", 1))
        if not span_text or not label:
            raise ValueError(f"line {number}: both the text and the label are needed")
        spans.append({"text": span_text, "label": label})
    return spans


def field_text(item: QueueItem, name: str) -> str:
    return item_text(item.fields.get(name, ""))


def initial_answer_state(
    state: MutableMapping[str, Any], guideline: Guideline, item: QueueItem, prefix: str = ""
) -> None:
    """Prefill the answer widgets with the model's label (nothing when blind), once per item."""
    shown = None if item.blind else item.llm_label
    editor = task_for(guideline).review.editor
    if editor == "multiselect":
        start = [x for x in shown or [] if x in guideline.label_names]
        state.setdefault(widget_key("labels", item, prefix), start)
    elif editor == "scores":
        for dim in guideline.dimensions:
            value = shown.get(dim) if isinstance(shown, dict) else None
            state.setdefault(widget_key(f"score-{dim}", item, prefix), value)
    elif editor == "span_picker":
        state.setdefault(widget_key("spans", item, prefix), spans_to_lines(shown))


def pick(
    state: MutableMapping[str, Any],
    guideline: Guideline,
    item: QueueItem,
    label: str,
    prefix: str = "",
) -> None:
    """A number key: choose the label, or with a multiselect add or remove it."""
    if task_for(guideline).review.editor == "multiselect":
        key = widget_key("labels", item, prefix)
        chosen = list(state.get(key) or [])
        state[key] = [x for x in chosen if x != label] if label in chosen else [*chosen, label]
    else:
        state[widget_key("pick", item, prefix)] = label


def picked(state: Mapping[str, Any], item: QueueItem, prefix: str = "") -> str | None:
    return state.get(widget_key("pick", item, prefix))


def toggle_no_spans(state: MutableMapping[str, Any], item: QueueItem, prefix: str = "") -> None:
    """The N key: say (or take back) that the text has no entities."""
    key = widget_key("no-spans", item, prefix)
    state[key] = not state.get(key)


def answer_from_state(
    state: Mapping[str, Any], guideline: Guideline, item: QueueItem, prefix: str = ""
) -> Any:
    """The reviewer's own answer as entered, or None when they have not given one."""
    editor = task_for(guideline).review.editor
    if editor == "buttons":
        return picked(state, item, prefix)
    if editor == "multiselect":
        return state.get(widget_key("labels", item, prefix))
    if editor == "scores":
        scores = {
            d: state.get(widget_key(f"score-{d}", item, prefix)) for d in guideline.dimensions
        }
        return None if any(v is None for v in scores.values()) else scores
    return spans_answer(state, guideline, item, prefix)


def spans_answer(
    state: Mapping[str, Any], guideline: Guideline, item: QueueItem, prefix: str = ""
) -> Any:
    """The spans as written, `[]` only when the reviewer chose No entities, None when they gave no
    answer (an empty editor is not an answer: an untouched blind item must not save `[]`)."""
    text = str(state.get(widget_key("spans", item, prefix)) or "")
    if state.get(widget_key("no-spans", item, prefix)):
        if text.strip():
            raise ConfigError("You chose No entities but the spans are not empty: clear one.")
        return []
    if not text.strip():
        if spans_to_lines(None if item.blind else item.llm_label):
            raise ConfigError(task_for(guideline).review.missing_answer)
        return None
    selected = state.get(widget_key(PICKED, item, prefix))
    if selected is not None and spans_to_lines(selected) == text:
        return selected
    try:
        return parse_span_lines(text)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def normalized(guideline: Guideline, item: QueueItem, answer: Any) -> Any:
    try:
        return task_for(guideline).normalize(
            guideline, answer, Item(item_id=item.item_id, fields=item.fields)
        )
    except ValueError as e:
        raise ConfigError(f"that label does not fit the guideline: {e}") from None


def decide(guideline: Guideline, item: QueueItem, answer: Any) -> tuple[str, Any]:
    """Enter: the action and label to record. No answer accepts the model's label (not offered
    when blind or when the model gave none). A blind item's label is always a `correct` (the
    reviewer's own); otherwise a label equal to the model's is an `accept`."""
    task = task_for(guideline)
    if answer is None:
        if item.blind or item.llm_label is None:
            raise ConfigError(task.review.missing_answer)
        return "accept", item.llm_label
    label = normalized(guideline, item, answer)
    if not item.blind and item.llm_label is not None and task.labels_equal(label, item.llm_label):
        return "accept", item.llm_label
    return "correct", label


def current_item(state: Mapping[str, Any]) -> QueueItem | None:
    batch = state.get(BATCH) or []
    return batch[0] if batch else None


def refill(state: MutableMapping[str, Any], db: str | Path, reviewer: str) -> QueueItem | None:
    """The item on screen; claims the next batch (one transaction) only when the batch is empty."""
    if not state.get(BATCH):
        held = hold.current(state)
        state[BATCH] = claim(db, reviewer, held.batch, held.lease, where=state.get(FILTER))
    return current_item(state)


def mark_shown(
    state: MutableMapping[str, Any], item: QueueItem, clock: Callable[[], float] = time.monotonic
) -> None:
    state.setdefault(widget_key("shown", item), clock())


def seconds_on_screen(
    state: Mapping[str, Any], item: QueueItem, clock: Callable[[], float] = time.monotonic
) -> float | None:
    shown = state.get(widget_key("shown", item))
    return None if shown is None else round(max(0.0, clock() - shown), 3)


def finish(state: MutableMapping[str, Any], item: QueueItem) -> None:
    """Take the item off the batch and forget everything kept for it."""
    state[BATCH] = [i for i in state.get(BATCH) or [] if item_key(i) != item_key(item)]
    suffix = ":" + item_key(item)
    for key in [k for k in list(state.keys()) if str(k).endswith(suffix)]:
        del state[key]


def act(
    state: MutableMapping[str, Any],
    db: str | Path,
    reviewer: str,
    guideline: Guideline,
    action: str,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Record `action` (accept, skip or flag) on the item on screen; on success the next item of
    the batch comes up. A problem becomes the `flash` message instead of an exception."""
    state[FLASH] = None
    if not still_signed_in(state, db):
        return False
    item = current_item(state)
    if item is None:
        return False
    note = str(state.get(widget_key("note", item)) or "").strip()
    try:
        label = None
        if action == "accept":
            action, label = decide(guideline, item, answer_from_state(state, guideline, item))
        submit(db, reviewer, item, action, label, note, seconds_on_screen(state, item, clock))
    except ClaimLost as e:
        finish(state, item)
        state[FLASH] = f"{e}. The next item is shown."
        return False
    except LabelagentError as e:
        state[FLASH] = str(e)
        return False
    finish(state, item)
    return True


def adjudicate(
    state: MutableMapping[str, Any],
    db: str | Path,
    adjudicator: str,
    guideline: Guideline,
    item: QueueItem,
    prefix: str = "adj-",
) -> bool:
    """Record the adjudicator's final label for a case; problems become the `flash` message."""
    state[FLASH] = state[NOTICE] = None
    if not still_signed_in(state, db):
        return False
    try:
        answer = answer_from_state(state, guideline, item, prefix)
        if answer is None:
            raise ConfigError(task_for(guideline).review.missing_answer)
        label = normalized(guideline, item, answer)
        note = str(state.get(widget_key("note", item, prefix)) or "").strip()
        submit(db, adjudicator, item, "adjudicate", label, note)
    except LabelagentError as e:
        state[FLASH] = str(e)
        return False
    suffix = ":" + item_key(item)
    for key in [
        k for k in list(state.keys()) if str(k).startswith(prefix) and str(k).endswith(suffix)
    ]:
        del state[key]
    state[NOTICE] = f"Final label for {item.item_id}: {label_text(label)}."
    return True


def review_columns(reviews: list[ReviewRow]) -> dict[str, list[str]]:
    """The reviews of a case side by side: one column per review."""
    columns: dict[str, list[str]] = {}
    for review in reviews:
        name = review.reviewer
        number = 2
        while name in columns:
            name = f"{review.reviewer} ({number})"
            number += 1
        columns[name] = [
            review.action,
            label_text(review.label) if review.label is not None else "—",
            review.note or "",
            "yes" if review.blind else "no",
        ]
    return columns


REVIEW_ROWS = ["action", "label", "note", "blind"]


def next_case(state: Mapping[str, Any], found: list[Case]) -> Case | None:
    """The first case the adjudicator has not skipped in this session."""
    skipped = state.get(SKIPPED_CASES) or set()
    return next((c for c in found if item_key(c.item) not in skipped), None)


def skip_case(state: MutableMapping[str, Any], item: QueueItem) -> None:
    """S: leave the case for later (it comes back in the next session, or after Show skipped)."""
    state[SKIPPED_CASES] = {*(state.get(SKIPPED_CASES) or set()), item_key(item)}


def filter_options(db: str | Path) -> FilterOptions:
    """The values the queue's filters offer, from the escalated decisions."""
    with transaction(db) as con:
        return store.filter_options(con)


def guideline_content(db: str | Path, guideline_hash: str) -> str:
    with transaction(db) as con:
        content = store.guideline_content(con, guideline_hash)
    if content is None:
        raise ConfigError(f"guideline {guideline_hash} is not in the database")
    return content


def sign_in(
    state: MutableMapping[str, Any], db: str | Path, name: str, password: str, client: str
) -> bool:
    """Check the name and password (unless this name or client must wait after failing); on
    success the reviewer and their session token are kept in the session."""
    result = sessions.sign_in(db, name, password, client) if name and password else SignIn()
    if result.wait_seconds > 0:
        state[FLASH] = (
            "Too many failed sign-ins with this name or from this computer. "
            f"Try again in {math.ceil(result.wait_seconds)} s."
        )
        return False
    if result.reviewer is None or result.token is None:
        state[FLASH] = "Wrong reviewer name or password."
        return False
    state[REVIEWER] = result.reviewer
    state[TOKEN] = result.token
    state[CHECKED] = True  # the script of this run need not ask the log again
    state[FLASH] = None
    return True


def signed_in(state: Mapping[str, Any]) -> Reviewer | None:
    reviewer = state.get(REVIEWER)
    return reviewer if isinstance(reviewer, Reviewer) else None


def check_session(
    state: MutableMapping[str, Any], db: str | Path, browser_token: str | None = None
) -> Reviewer | None:
    """The signed-in reviewer, checked against the log on every run, so a sign-out elsewhere, a
    removed account, a new password or an expired session ends this session at the next click.
    After a reload the session has only the token the browser kept (`browser_token`). The
    actions check first (`still_signed_in`), since Streamlit runs a click's callback before the
    app's script; the script of the same run then takes their answer."""
    if state.pop(CHECKED, False):
        return signed_in(state)
    token = state.get(TOKEN) or browser_token
    reviewer = sessions.session_reviewer(db, token) if token else None
    if reviewer is None:
        if state.get(TOKEN):
            drop_batch(state)
            for key in (REVIEWER, TOKEN, FILTER, NOTICE):
                state.pop(key, None)
            state[FLASH] = "Your session has ended. Sign in again."
        return None
    state[TOKEN] = token
    state[REVIEWER] = reviewer
    return reviewer


def still_signed_in(state: MutableMapping[str, Any], db: str | Path) -> bool:
    """For an action's callback: is the session still good? (If not, the action is dropped and
    the reviewer signed out.) Checked once per click: the app's script that follows the
    callback in the same run takes this answer."""
    reviewer = check_session(state, db)
    state[CHECKED] = True
    return reviewer is not None


def redirect(page: str, reviewer: Reviewer | None, wanted: str | None) -> tuple[str, str] | None:
    """Where a request for `page` (its url path; "" is the app's root) goes instead, and the
    page to go on to after signing in; None when the page may be shown. Signed out, every page
    leads to the sign-in page; signed in, the root and the sign-in page lead on to the page asked
    for, else the queue. Only adjudicators may open the adjudication page."""
    if reviewer is None:
        return None if page == SIGN_IN_PAGE else (SIGN_IN_PAGE, page or HOME_PAGE)
    if page == SIGN_IN_PAGE:
        return (wanted if wanted in PAGES and may_open(wanted, reviewer) else HOME_PAGE), ""
    return None if page in PAGES and may_open(page, reviewer) else (HOME_PAGE, "")


def may_open(page: str, reviewer: Reviewer) -> bool:
    return page != ADJUDICATION_PAGE or reviewer.can_adjudicate


def drop_batch(state: MutableMapping[str, Any]) -> None:
    for item in list(state.get(BATCH) or []):
        finish(state, item)
    state[BATCH] = []


def sign_out(state: MutableMapping[str, Any], db: str | Path) -> None:
    """End the session (its token is refused from now on), give back the reviewer's claims and
    forget the session's reviewer, batch and filter."""
    reviewer = signed_in(state)
    if reviewer is not None:
        release(db, reviewer.name)
    if state.get(TOKEN):
        sessions.end_session(db, state[TOKEN])
    drop_batch(state)
    for key in (REVIEWER, TOKEN, FILTER, FLASH, NOTICE):
        state.pop(key, None)


def set_filter(
    state: MutableMapping[str, Any], db: str | Path, reviewer: str, where: QueueFilter
) -> None:
    """A new filter gives back the batch, so the next claim follows the filter."""
    if state.get(FILTER, QueueFilter()) == where:
        return
    release(db, reviewer)
    drop_batch(state)
    state[FILTER] = where


def section_labels(state: Mapping[str, Any], guideline: Guideline, item: QueueItem) -> list[str]:
    """Which labels' guideline sections to show: what the reviewer picked, else the model's label
    (never for a blind item); with score inputs, the dimensions."""
    editor = task_for(guideline).review.editor
    if editor == "scores":
        return list(guideline.dimensions)
    if editor == "multiselect":
        return list(state.get(widget_key("labels", item)) or [])
    mine = picked(state, item) if editor == "buttons" else None
    if mine:
        return [mine]
    if item.blind or item.llm_label is None:
        return []
    if isinstance(item.llm_label, str):
        return [item.llm_label]
    return list(dict.fromkeys(s.get("label", "") for s in item.llm_label if isinstance(s, dict)))


def demote_headings(markdown: str) -> str:
    """Headings as bold lines, so a guideline excerpt fits a side column (code left alone)."""
    lines, in_fence = [], False
    for line in markdown.split("\n"):
        if re.match(r"^ {0,3}(```|~~~)", line):
            in_fence = not in_fence
        heading = None if in_fence else re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        lines.append(f"**{heading.group(1)}**" if heading else line)
    return "\n".join(lines)
