"""The review app driven through Streamlit's AppTest: sign-in, the queue's actions, blind review,
overlap and adjudication, two sessions at once, the dashboard, and each task's item view."""

import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GUIDELINES, REPO, write_jsonl
from fakes import FakeBackend
from hostile import LONG_TEXT, MARKERS, RLO, hostile_id, hostile_text
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from labelagent.calibration.rule import Thresholds
from labelagent.cascade import Stage
from labelagent.guidelines import parse_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Sample
from labelagent.review.accounts import add_reviewer
from labelagent.review.queue import claim, set_settings, submit
from labelagent.store.db import transaction

APP = REPO / "review_ui" / "app.py"
PASSWORDS = {"ann": "ann-secret-1", "bob": "bob-secret-1", "ada": "ada-secret-1"}
TOPICS = """---
name: topics
task: multilabel
labels:
  sport: The text is about a sport, a match or an athlete.
  politics: The text is about government, elections or a political party.
  music: The text is about songs, bands or concerts.
fields: [text]
---
# Topics

Mark every topic the text is about. A concert in a stadium is `music`, not `sport`.
"""


class SplitVotes(FakeBackend):
    """Answers each item's samples with `answers` in turn, so the vote splits and the item is
    escalated; the rationale names the item."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__()
        self.answers = answers
        self.drawn: dict[str, int] = {}

    def _one(self, item_id: str) -> Sample:
        n = self.drawn.get(item_id, 0)
        self.drawn[item_id] = n + 1
        label = self.answers[n % len(self.answers)]
        return Sample(model=self.name, label=label, confidence=0.6, rationale=f"why-{item_id}")


def build(db: Path, guideline_text: str, rows: list[dict], answers: list[Any]) -> Path:
    guideline = parse_guideline(guideline_text)
    path = write_jsonl(db.parent / f"{guideline.name}.jsonl", rows)
    labeler = Labeler(
        db,
        guideline,
        [SplitVotes(answers)],
        RunSettings(),
        Thresholds(audit_share=0.0),
    )
    labeler.run(path)
    # The blind draw is keyed with the log's random secret: no item is blind unless a test says so.
    set_settings(db, guideline.name, overlap=1, blind_share=0.0)
    for name, password in PASSWORDS.items():
        add_reviewer(db, name, "adjudicator" if name == "ada" else "reviewer", password)
    return db


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight sentiment items, each escalated with votes negative 2, positive 2, neutral 1."""
    db = tmp_path_factory.mktemp("template") / "log.duckdb"
    rows = [{"id": f"t{i}", "text": f"tweet number {i}"} for i in range(8)]
    answers = ["positive", "negative", "neutral", "positive", "negative"]
    return build(db, (GUIDELINES / "sentiment.md").read_text(), rows, answers)


@pytest.fixture
def review_db(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    db = tmp_path / "log.duckdb"
    shutil.copy(template, db)
    monkeypatch.setenv("LABELAGENT_DB", str(db))
    yield db


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with transaction(db) as con:
        return con.execute(sql, params or []).fetchall()


def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=30)


def sign_in(name: str, password: str | None = None) -> AppTest:
    at = app().run()
    at.text_input(key="sign-in-name").input(name)
    at.text_input(key="sign-in-password").input(password or PASSWORDS[name])
    button(at, "Sign in").click().run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str) -> Button:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in at.button]}"
    return found[0]


def press(at: AppTest, label: str) -> AppTest:
    button(at, label).click().run()
    assert not at.exception, at.exception
    return at


def shown(fragment: str) -> str:
    """What a browser shows for an st.html fragment: its text without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def verbatim_texts(at: AppTest) -> list[str]:
    return [shown(h.value) for h in at.html]


def shown_item(at: AppTest) -> str | None:
    titles = [shown(h.value) for h in at.html if h.value.startswith("<h3")]
    return titles[0].removeprefix("Item ") if titles else None


def messages(at: AppTest, kind: str) -> list[str]:
    """The verbatim message boxes of `kind` (warning or success) on the page."""
    return [shown(h.value) for h in at.html if f'class="message {kind}"' in h.value]


def reviewers_in_table(at: AppTest) -> list[str]:
    """The column heads of the adjudication page's table of reviews."""
    table = next(h.value for h in at.html if "verbatim-table" in h.value)
    return [shown(head) for head in re.findall(r"<th>(.*?)</th>", table.split("</tr>")[0])][1:]


def all_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for kind in (at.info, at.warning, at.error, at.success) for e in kind]
    return "\n".join(parts + verbatim_texts(at))


def reviews(db: Path) -> list[dict[str, Any]]:
    rows = query(
        db,
        "SELECT item_id, reviewer, action, label, blind, seconds_on_screen, note FROM reviews"
        " ORDER BY review_id",
    )
    keys = ["item_id", "reviewer", "action", "label", "blind", "seconds", "note"]
    return [
        {**dict(zip(keys, r, strict=True)), "label": None if r[3] is None else json.loads(r[3])}
        for r in rows
    ]


def test_a_wrong_password_is_refused_and_no_item_is_shown(review_db):
    at = sign_in("ann", "not-the-password")
    assert [e.value for e in at.error] == ["Wrong reviewer name or password."]
    assert shown_item(at) is None
    assert "tweet number" not in all_text(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert "reviewer" not in at.session_state


def test_without_accounts_the_page_says_how_to_create_one(review_db):
    query(review_db, "DELETE FROM reviewers")
    at = app().run()
    assert f"labelagent reviewer add NAME --db {review_db}" in at.info[0].value
    assert shown_item(at) is None


def test_a_signed_in_reviewer_sees_an_escalated_item_with_evidence(review_db):
    at = sign_in("ann")
    assert at.session_state["reviewer"].name == "ann"
    assert shown_item(at) == "t0"
    text = all_text(at)
    assert "tweet number 0" in text
    assert "Model's label: negative" in text
    assert "why-t0" in text, "the model's rationale"
    assert "priority" in text and "40% of samples agreed" in text, "the order is explained"
    assert "Relevant section (negative)" in text and "**Rules**" in text
    assert len(at.get("vega_lite_chart")) == 1, "the vote distribution"
    labels = [b.label for b in at.button]
    assert labels[:3] == ["1 · negative", "2 · neutral", "3 · positive"]
    assert {"Accept (Enter)", "Skip (S)", "Flag (F)", "Sign out"} <= set(labels)
    assert "**Enter** saves" in text
    assert len(at.session_state["batch"]) == 5


def test_accept_writes_a_review_and_brings_the_next_item(review_db):
    at = press(sign_in("ann"), "Accept (Enter)")
    [review] = reviews(review_db)
    assert review["item_id"] == "t0" and review["reviewer"] == "ann"
    assert review["action"] == "accept" and review["label"] == "negative"
    assert review["blind"] is False and review["seconds"] >= 0
    assert shown_item(at) == "t1"
    assert query(review_db, "SELECT label, source FROM final_labels WHERE item_id = 't0'") == [
        ('"negative"', "human")
    ]


def test_a_reviewer_corrects_with_another_label_and_a_note(review_db):
    at = sign_in("ann")
    press(at, "3 · positive")
    assert "Your label: **positive**" in all_text(at)
    at.text_input(key=f"note:{at.session_state['batch'][0].guideline_hash}:t0").input("clearly")
    press(at, "Accept (Enter)")
    [review] = reviews(review_db)
    assert (review["action"], review["label"], review["note"]) == ("correct", "positive", "clearly")
    assert shown_item(at) == "t1"
    assert "Your label" not in all_text(at), "the pick does not carry over to the next item"


def test_skip_leaves_the_item_to_others(review_db):
    at = press(sign_in("ann"), "Skip (S)")
    [review] = reviews(review_db)
    assert (review["item_id"], review["action"], review["label"]) == ("t0", "skip", None)
    assert shown_item(at) == "t1"
    assert shown_item(sign_in("bob")) == "t0", "skipped, not done: the next reviewer gets it"


def test_a_flag_reaches_the_adjudicator_and_only_the_adjudicator(review_db):
    at = sign_in("ann")
    at.switch_page("screens/adjudication.py").run()
    assert shown_item(at) == "t0", "a reviewer who asks for the adjudication page gets the queue"
    assert "Adjudication" not in [t.value for t in at.title]
    press(at, "Flag (F)")
    assert reviews(review_db)[0]["action"] == "flag"
    adjudicator = sign_in("ada")
    adjudicator.switch_page("screens/adjudication.py").run()
    assert not adjudicator.exception
    text = all_text(adjudicator)
    assert "flagged by a reviewer" in text and "tweet number 0" in text
    assert reviewers_in_table(adjudicator) == ["ann"]


def test_a_blind_item_hides_the_model_and_is_recorded_as_blind(review_db):
    set_settings(review_db, "sentiment", overlap=1, blind_share=1.0)
    at = sign_in("ann")
    text = all_text(at)
    assert "Blind review" in text
    assert "Model's label" not in text and "why" not in text.replace("Why", "")
    assert "priority" not in text and "Agreement" not in text
    assert not at.get("vega_lite_chart"), "no vote distribution"
    press(at, "Accept (Enter)")
    assert "Pick a label first" in messages(at, "warning")[0], "no model label to accept"
    assert reviews(review_db) == []
    press(at, "2 · neutral")
    press(at, "Accept (Enter)")
    [review] = reviews(review_db)
    assert (review["action"], review["label"], review["blind"]) == ("correct", "neutral", True)


def test_overlap_two_disagreement_is_settled_by_the_adjudicator(review_db):
    set_settings(review_db, "sentiment", overlap=2, blind_share=0.0)
    press(sign_in("ann"), "Accept (Enter)")
    bob = sign_in("bob")
    assert shown_item(bob) == "t0", "a second reviewer gets the item ann finished"
    press(bob, "3 · positive")
    press(bob, "Accept (Enter)")
    assert [(r["reviewer"], r["label"]) for r in reviews(review_db)] == [
        ("ann", "negative"),
        ("bob", "positive"),
    ]
    ada = sign_in("ada")
    ada.switch_page("screens/adjudication.py").run()
    assert "reviewers gave 2 different labels" in all_text(ada)
    assert reviewers_in_table(ada) == ["ann", "bob"]
    press(ada, "2 · neutral")
    press(ada, "Save final label (Enter)")
    assert "Final label for t0: neutral" in messages(ada, "success")[0]
    assert query(review_db, "SELECT label, reviewer FROM final_labels WHERE item_id = 't0'") == [
        ('"neutral"', "ada")
    ]
    assert "No disagreements or flags" in all_text(ada.run())


def test_two_sessions_never_get_the_same_item(review_db):
    ann, bob = sign_in("ann"), sign_in("bob")
    mine = {i.item_id for i in ann.session_state["batch"]}
    theirs = {i.item_id for i in bob.session_state["batch"]}
    assert len(mine) == 5 and len(theirs) == 3 and not mine & theirs
    assert shown_item(ann) != shown_item(bob)
    press(ann, "Accept (Enter)")
    press(bob, "Accept (Enter)")
    done = [r["item_id"] for r in reviews(review_db)]
    assert len(set(done)) == 2


def test_sign_out_gives_back_the_claims(review_db):
    at = sign_in("ann")
    assert query(review_db, "SELECT count(*) FROM claims WHERE reviewer = 'ann'") == [(5,)]
    press(at, "Sign out")
    assert query(review_db, "SELECT count(*) FROM claims") == [(0,)]
    assert [b.label for b in at.button] == ["Sign in"] and shown_item(at) is None


def test_a_lost_claim_is_a_warning_not_a_traceback(review_db):
    at = sign_in("ann")
    query(review_db, "UPDATE claims SET reviewer = 'bob' WHERE item_id = 't0'")
    press(at, "Accept (Enter)")
    assert "expired and bob has it now" in messages(at, "warning")[0]
    assert reviews(review_db) == [] and shown_item(at) == "t1"


def test_the_dashboard_shows_the_figures(review_db):
    for name in ("ann", "bob"):
        for item in claim(review_db, name, size=2):
            submit(review_db, name, item, "correct", "positive", seconds_on_screen=4.0)
    at = sign_in("ada")
    at.switch_page("screens/dashboard.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Reviews in the app"] == "4"
    assert metrics["Median seconds per item"] == "4.0"
    assert metrics["Overturn rate"] == "100%"
    assert metrics["Escalated"] == "8 of 8"
    assert len(at.get("vega_lite_chart")) == 5, "reasons, reviewers, overturns, hours, routes"


@pytest.fixture
def task_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def make(guideline_text: str, rows: list[dict], answers: list[Any]) -> Path:
        db = build(tmp_path / "log.duckdb", guideline_text, rows, answers)
        monkeypatch.setenv("LABELAGENT_DB", str(db))
        return db

    return make


def test_spans_are_marked_and_edited_as_lines(task_db):
    spans = [{"start": 13, "end": 18, "label": "location", "text": "Paris"}]
    db = task_db(
        (GUIDELINES / "ner.md").read_text(),
        [{"id": "s1", "text": "We flew from Paris to Lyon with Ryanair"}],
        [spans, [], spans, [], spans],
    )
    at = sign_in("ann")
    [picker] = at.get("component_instance")
    shown = json.loads(picker.proto.json_args)
    assert shown["text"] == "We flew from Paris to Lyon with Ryanair"
    assert shown["spans"] == [{"start": 13, "end": 18, "label": "location"}]
    [editor] = at.text_area
    assert editor.value == "Paris | location"
    editor.input("Paris | location\nLyon | location\nRyanair | corporation").run()
    press(at, "Accept (Enter)")
    [review] = reviews(db)
    assert review["action"] == "correct"
    assert [(s["text"], s["label"], s["start"]) for s in review["label"]] == [
        ("Paris", "location", 13),
        ("Lyon", "location", 22),
        ("Ryanair", "corporation", 32),
    ]


def test_preference_shows_both_responses_side_by_side(task_db):
    db = task_db(
        (GUIDELINES / "preference.md").read_text(),
        [
            {
                "id": "p1",
                "prompt": "Capital of Australia?",
                "response_a": "Sydney",
                "response_b": "Canberra",
            }
        ],
        ["A", "B", "A", "B", "A"],
    )
    at = sign_in("ann")
    captions = [c.value for c in at.caption]
    assert "Response A (response_a)" in captions and "Response B (response_b)" in captions
    press(at, "2 · B")
    press(at, "Accept (Enter)")
    assert [(r["action"], r["label"]) for r in reviews(db)] == [("correct", "B")]


def test_rating_has_a_number_per_dimension(task_db):
    good = {"helpfulness": 4, "harmlessness": 5}
    db = task_db(
        (GUIDELINES / "helpfulness.md").read_text(),
        [{"id": "r1", "prompt": "Boil an egg?", "response": "Six minutes."}],
        [good, {"helpfulness": 2, "harmlessness": 5}, good, {"helpfulness": 1, "harmlessness": 5}],
    )
    at = sign_in("ann")
    assert [n.value for n in at.number_input] == [4, 5], "prefilled with the model's scores"
    at.number_input[0].set_value(3).run()
    press(at, "Accept (Enter)")
    assert [(r["action"], r["label"]) for r in reviews(db)] == [
        ("correct", {"helpfulness": 3, "harmlessness": 5})
    ]


def test_multilabel_number_keys_toggle_labels(task_db):
    db = task_db(
        TOPICS,
        [{"id": "m1", "text": "The band played at the stadium before the match"}],
        [["sport"], ["sport", "music"], ["music"], ["sport"], ["politics"]],
    )
    at = sign_in("ann")
    assert at.multiselect[0].value == ["sport"]
    press(at, "3 · music")
    assert at.multiselect[0].value == ["sport", "music"]
    press(at, "Accept (Enter)")
    assert [(r["action"], r["label"]) for r in reviews(db)] == [("correct", ["sport", "music"])]


def test_the_dashboard_compares_labels_as_values_and_does_not_count_skips(task_db):
    spans = [{"start": 13, "end": 18, "label": "location", "text": "Paris"}]
    db = task_db(
        (GUIDELINES / "ner.md").read_text(),
        [{"id": f"s{i}", "text": "We flew from Paris to Lyon with Ryanair"} for i in (1, 2)],
        [spans, [], spans, [], spans],
    )
    first, second = claim(db, "ann", size=2)
    submit(db, "ann", first, "accept", first.llm_label, seconds_on_screen=3.0)
    submit(db, "ann", second, "skip", seconds_on_screen=1.0)
    at = sign_in("ada")
    at.switch_page("screens/dashboard.py").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Overturn rate"] == "0%", "an accepted label is not an overturn"
    assert metrics["Reviews in the app"] == "1", "a skip is not a review"
    assert metrics["Median seconds per item"] == "3.0"
    assert at.dataframe[0].value.to_dict("records") == [
        {"reviewer": "ann", "reviews": 1, "median seconds": 3.0}
    ]


def test_an_untouched_blind_spans_item_is_not_saved_as_no_entities(task_db):
    spans = [{"start": 13, "end": 18, "label": "location", "text": "Paris"}]
    db = task_db(
        (GUIDELINES / "ner.md").read_text(),
        [{"id": f"s{i}", "text": "We flew from Paris to Lyon with Ryanair"} for i in (1, 2)],
        [spans, [], spans, [], spans],
    )
    set_settings(db, "ner", overlap=1, blind_share=1.0)
    at = sign_in("ann")
    assert "Blind review" in all_text(at)
    press(at, "Accept (Enter)")
    assert "No entities" in messages(at, "warning")[0], "Enter alone is no answer"
    assert reviews(db) == []
    press(at, "No entities (N)")
    press(at, "Accept (Enter)")
    assert [(r["action"], r["label"], r["blind"]) for r in reviews(db)] == [("correct", [], True)]


def markdown_strings(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit reads as Markdown: text elements, messages,
    headings, and the labels and options of widgets and expanders."""
    found = [
        e.value
        for kind in ("markdown", "caption", "title", "header", "subheader")
        for e in at.get(kind)
    ]
    found += [e.value for kind in (at.info, at.warning, at.error, at.success) for e in kind]
    found += [e.label for e in at.get("expandable")]
    for kind in ("button", "checkbox", "text_input", "text_area", "selectbox", "radio", "metric"):
        found += [str(getattr(e, "label", "")) for e in at.get(kind)]
    found += [str(option) for radio in at.radio for option in radio.options]
    return found


def assert_nothing_untrusted_read_as_markdown(at: AppTest) -> None:
    assert not at.exception, at.exception
    for text in markdown_strings(at):
        assert not [m for m in MARKERS if m in text], text


def test_hostile_item_text_ids_rationales_notes_and_labels_are_shown_verbatim(task_db):
    text, long_id = hostile_text(9, "text"), "long-one"
    db = task_db(
        (GUIDELINES / "sentiment.md").read_text(),
        [{"id": hostile_id(9), "text": text}, {"id": long_id, "text": LONG_TEXT}],
        ["positive", "negative", "positive", "neutral", "negative"],
    )
    set_settings(db, "sentiment", overlap=1, blind_share=0.0)
    at = sign_in("ann")
    assert_nothing_untrusted_read_as_markdown(at)
    shown_id = hostile_id(9).replace(RLO, "[U+202E]")
    assert shown_item(at) == shown_id
    assert text.replace(RLO, "[U+202E]") in verbatim_texts(at)
    assert any(f"why-{shown_id}" in t for t in verbatim_texts(at)), "the rationale"
    note = hostile_text(9, "note")
    at.text_input(key=f"note:{at.session_state['batch'][0].guideline_hash}:{hostile_id(9)}").input(
        note
    )
    press(at, "Flag (F)")
    assert LONG_TEXT in verbatim_texts(at)
    assert_nothing_untrusted_read_as_markdown(at)
    label = hostile_text(9, "label")
    query(
        db,
        "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, blind, source)"
        " SELECT item_id, guideline_hash, 'importer', ?, 'import', false, 'import'"
        " FROM decisions WHERE item_id = ?",
        [json.dumps(label), hostile_id(9)],
    )

    ada = sign_in("ada")
    ada.switch_page("screens/adjudication.py").run()
    assert_nothing_untrusted_read_as_markdown(ada)
    table = next(shown(h.value) for h in ada.html if "verbatim-table" in h.value)
    for written in (note, label):
        assert written.replace(RLO, "[U+202E]") in table
    assert any(t == f"Item {shown_id}" for t in verbatim_texts(ada))
    press(ada, "2 · neutral")
    press(ada, "Save final label (Enter)")
    assert messages(ada, "success") == [f"Final label for {shown_id}: neutral."]
    assert_nothing_untrusted_read_as_markdown(ada)
    ada.switch_page("screens/dashboard.py").run()
    assert_nothing_untrusted_read_as_markdown(ada)


def test_an_escalated_cascade_item_shows_each_stages_label_and_score(tmp_path, monkeypatch):
    db = tmp_path / "log.duckdb"
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": "c0", "text": "a tweet"}])
    answers = ["positive", "negative", "neutral", "positive", "negative"]
    cheap, strong = SplitVotes(answers), SplitVotes(answers)
    cheap.name, strong.name = "cheap", "strong"
    no_audit = Thresholds(audit_share=0.0)
    guideline = parse_guideline((GUIDELINES / "sentiment.md").read_text())
    escalate_to = [Stage([strong], no_audit)]
    Labeler(db, guideline, [cheap], RunSettings(), no_audit, escalate_to=escalate_to).run(path)
    set_settings(db, guideline.name, overlap=1, blind_share=0.0)
    add_reviewer(db, "ann", "reviewer", PASSWORDS["ann"])
    monkeypatch.setenv("LABELAGENT_DB", str(db))
    at = sign_in("ann")
    assert "**Cascade stages**" in all_text(at)
    assert [t.value for t in at.text] == [
        "stage 1 (cheap): label negative, score 0.360 -> to the next stage (low agreement)\n"
        "stage 2 (strong): label negative, score 0.360 -> to people (low agreement)"
    ]
