"""What reviewers expect beyond the actions themselves, without a browser: undo, progress, the
text filter, lease and batch settings, adjudication one case at a time, and spans picked by
selection keeping their exact offsets."""

from typing import Any

import pytest
from conftest import GUIDELINES, write_jsonl
from fakes import FakeBackend

from labelagent.calibration.rule import Thresholds
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Item
from labelagent.review import adjudication, queue, sessions, stats
from labelagent.review.accounts import add_reviewer
from labelagent.review.queue import QueueFilter
from labelagent.review_ui import hold, page_state, progress, span_selection, undo
from labelagent.review_ui.launch import streamlit_command
from labelagent.store.db import transaction
from labelagent.tasks import task_for

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
NER = load_guideline(GUIDELINES / "ner.md")
TEXTS = ["the bus was late", "Great match today", "rain again", "the bus was early", "ok"]


@pytest.fixture
def escalated_db(tmp_path, db):
    """Five items, every one escalated (the two samples split)."""
    rows = [{"id": f"q{i}", "text": text} for i, text in enumerate(TEXTS)]
    model = FakeBackend(default="positive")
    model.enqueue(*(["positive", "negative"] * 10))
    Labeler(
        db,
        SENTIMENT,
        [model],
        RunSettings(samples=2, stop_confidence=1.0),
        Thresholds(audit_share=0),
    ).run(write_jsonl(tmp_path / "items.jsonl", rows))
    queue.set_settings(db, "sentiment", overlap=1, blind_share=0.0)
    return db


def rows(db, sql: str, params: list | None = None) -> list[tuple]:
    with transaction(db) as con:
        return con.execute(sql, params or []).fetchall()


def session(db, reviewer: str = "ann", **held: Any) -> dict[str, Any]:
    """A signed-in reviewer's session state, as the app keeps it."""
    add_reviewer(db, reviewer, "reviewer", "a long password")
    signed = sessions.sign_in(db, reviewer, "a long password", "local")
    state: dict[str, Any] = {
        hold.HOLD: hold.Hold(**held),
        page_state.REVIEWER: signed.reviewer,
        page_state.TOKEN: signed.token,
    }
    progress.refill(state, db, reviewer)
    return state


def test_undo_deletes_the_review_and_brings_the_item_back_as_it_was(escalated_db):
    state = session(escalated_db)
    first = page_state.current_item(state)
    page_state.pick(state, SENTIMENT, first, "neutral")
    state[page_state.widget_key("note", first)] = "sarcastic?"
    assert undo.act(state, escalated_db, "ann", SENTIMENT, "accept")
    final = "SELECT label, source FROM final_labels WHERE item_id = ?"
    assert rows(escalated_db, final, [first.item_id]) == [('"neutral"', "human")]
    assert stats.progress(escalated_db).per_reviewer[0][:2] == ("ann", 1)
    assert page_state.current_item(state).item_id != first.item_id

    assert undo.undo(state, escalated_db, "ann")
    assert page_state.current_item(state).item_id == first.item_id
    assert page_state.picked(state, first) == "neutral", "what was entered comes back"
    assert state[page_state.widget_key("note", first)] == "sarcastic?"
    assert rows(escalated_db, "SELECT count(*) FROM reviews") == [(0,)]
    assert rows(escalated_db, final, [first.item_id]) == [], "waiting for a review again"
    assert stats.progress(escalated_db).per_reviewer == [], "the dashboard no longer counts it"
    assert rows(escalated_db, "SELECT reviewer FROM claims WHERE item_id = ?", [first.item_id]) == [
        ("ann",)
    ]
    assert not undo.undo(state, escalated_db, "ann"), "one decision, one undo"
    assert "Nothing to undo" in state[page_state.FLASH]


def test_undo_is_refused_once_someone_else_has_the_item(escalated_db):
    state = session(escalated_db)
    item = page_state.current_item(state)
    assert undo.act(state, escalated_db, "ann", SENTIMENT, "skip")
    taken = queue.claim(escalated_db, "bob", size=1)
    assert [i.item_id for i in taken] == [item.item_id], "a skipped item goes to the next reviewer"

    assert not undo.undo(state, escalated_db, "ann")
    assert "bob has" in state[page_state.FLASH]
    assert rows(escalated_db, "SELECT reviewer, action FROM reviews") == [("ann", "skip")]


def test_undo_is_refused_after_the_lease(escalated_db):
    state = session(escalated_db, lease_minutes=10)
    assert undo.act(state, escalated_db, "ann", SENTIMENT, "accept")
    with transaction(escalated_db) as con:
        con.execute("UPDATE reviews SET created_at = created_at - INTERVAL 11 MINUTE").fetchall()
    assert not undo.undo(state, escalated_db, "ann")
    assert "more than 10 minutes old" in state[page_state.FLASH]
    assert rows(escalated_db, "SELECT count(*) FROM reviews") == [(1,)]


def test_progress_counts_what_waits_for_the_reviewer_and_what_they_did_today(escalated_db):
    state = session(escalated_db)
    assert progress.line(state) == "5 waiting for you · 0 done today"
    undo.act(state, escalated_db, "ann", SENTIMENT, "accept")
    undo.act(state, escalated_db, "ann", SENTIMENT, "skip")
    assert progress.line(state) == "3 waiting for you · 1 done today"
    assert progress.measure(escalated_db, "ann") == progress.Progress(3, 3, 1), "same as counted"
    undo.undo(state, escalated_db, "ann")
    assert progress.line(state) == "4 waiting for you · 1 done today"
    filtered = progress.measure(escalated_db, "ann", QueueFilter(text="BUS"))
    assert filtered.line() == "1 of 4 waiting for you · 1 done today"


def test_the_text_filter_finds_items_by_a_part_of_their_text_in_any_case(escalated_db):
    found = queue.claim(escalated_db, "ann", size=5, where=QueueFilter(text="The BUS"))
    assert sorted(i.item_id for i in found) == ["q0", "q3"]
    quote = QueueFilter(text="x' OR '1'='1")
    assert queue.claim(escalated_db, "bob", size=5, where=quote) == [], "a parameter, not SQL"
    assert queue.claim(escalated_db, "bob", size=5, where=QueueFilter(text="100%")) == []


def test_lease_and_batch_come_from_the_command_line(escalated_db):
    command = streamlit_command(escalated_db, 8501, hold.Hold(lease_minutes=2.5, batch=3))
    script_args = command[command.index("--") + 1 :]
    held = hold.parse(script_args)
    assert held == hold.Hold(lease_minutes=2.5, batch=3)
    assert hold.parse([]) == hold.Hold(10, 5)
    state = {hold.HOLD: held}
    page_state.refill(state, escalated_db, "ann")
    assert len(state[page_state.BATCH]) == 3
    [(seconds,)] = rows(escalated_db, "SELECT DISTINCT epoch(expires_at - claimed_at) FROM claims")
    assert seconds == 150


def test_adjudication_takes_one_case_at_a_time_with_filters_and_skips(escalated_db):
    for item in queue.claim(escalated_db, "ann", size=5):
        queue.submit(escalated_db, "ann", item, "flag", note="unsure")
    found = adjudication.cases(escalated_db, where=QueueFilter(text="bus"))
    assert [c.item.item_id for c in found] == ["q0", "q3"]
    state: dict[str, Any] = {}
    assert page_state.next_case(state, found).item.item_id == "q0"
    page_state.skip_case(state, found[0].item)
    assert page_state.next_case(state, found).item.item_id == "q3"
    page_state.skip_case(state, found[1].item)
    assert page_state.next_case(state, found) is None


def ner_item(text: str) -> queue.QueueItem:
    return queue.QueueItem(
        item_id="s1",
        guideline_hash="h",
        guideline_name="ner",
        task="spans",
        fields={"text": text},
        llm_label=[],
        agreement=None,
        confidence=None,
        votes={},
        reasons=[],
        disagreeing_models=[],
        blind=False,
        priority=0.0,
    )


def test_a_picked_span_keeps_its_offsets_through_the_answer():
    text = "Paris 🇫🇷 is not Paris, Texas"
    item = ner_item(text)
    state: dict[str, Any] = {}
    page_state.initial_answer_state(state, NER, item)
    second = text.rindex("Paris")
    value = {"spans": [{"start": second, "end": second + 5, "label": "location"}], "n": 1}
    span_selection.apply_pick(state, item, text, value)
    assert state[page_state.widget_key("spans", item)] == "Paris | location", "the fallback box"
    assert span_selection.applied(state, item) == 1
    answer = page_state.answer_from_state(state, NER, item)
    label = task_for(NER).normalize(NER, answer, Item(item_id="s1", fields=item.fields))
    assert label == [{"start": second, "end": second + 5, "label": "location", "text": "Paris"}]


def test_editing_the_box_after_a_pick_makes_the_box_the_answer():
    text = "Paris and Lyon"
    item = ner_item(text)
    state: dict[str, Any] = {}
    value = {"spans": [{"start": 10, "end": 14, "label": "location"}], "n": 1}
    span_selection.apply_pick(state, item, text, value)
    state[page_state.widget_key("spans", item)] = "Lyon | location\nParis | location"
    assert page_state.answer_from_state(state, NER, item) == [
        {"text": "Lyon", "label": "location"},
        {"text": "Paris", "label": "location"},
    ]
    assert [s["start"] for s in span_selection.shown(state, NER, item)] == [0, 10]
    state[page_state.widget_key("spans", item)] = "Lyon | location\nPar"
    assert [s["start"] for s in span_selection.shown(state, NER, item)] == [10], (
        "a half-typed line leaves the last good spans on show"
    )


def test_a_pick_outside_the_text_is_dropped():
    item = ner_item("short")
    state: dict[str, Any] = {}
    value = {"spans": [{"start": 2, "end": 99, "label": "person"}, {"start": "0"}], "n": 2}
    span_selection.apply_pick(state, item, "short", value)
    assert state[page_state.widget_key(page_state.PICKED, item)] == []
