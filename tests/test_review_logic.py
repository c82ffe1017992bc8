"""The review app's pure parts: guideline sections for a label, and the state behind the page."""

from datetime import datetime
from typing import Any

import pytest
from conftest import GUIDELINES

from labelagent.errors import ConfigError
from labelagent.guidelines import load_guideline, parse_guideline
from labelagent.review.queue import QueueFilter, QueueItem
from labelagent.review_ui import page_state
from labelagent.review_ui.sections import label_sections, opening, relevant_sections, split_blocks
from labelagent.store.review.cases import ReviewRow

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
NER = load_guideline(GUIDELINES / "ner.md")
RATING = load_guideline(GUIDELINES / "helpfulness.md")
MULTI = parse_guideline(
    "---\nname: topics\ntask: multilabel\nlabels: [sport, politics, music]\n---\n# Topics\n"
)

BODY = """Intro paragraph about the task.

## Rules

1. **Facts are `neutral`.** A plain report
   carries no attitude.
2. Praise is `positive`.

## card_arrival

Everything about cards that have not come yet.

More on card_arrival.

```
## not a heading: `neutral` inside code
```
"""


def item(**overrides: Any) -> QueueItem:
    fields = {
        "item_id": "t1",
        "guideline_hash": "h1",
        "guideline_name": "sentiment",
        "task": "classification",
        "fields": {"text": "We flew from Paris to Lyon"},
        "llm_label": "negative",
        "agreement": 0.4,
        "confidence": 0.6,
        "votes": {'"negative"': 2, '"positive"': 2, '"neutral"': 1},
        "reasons": ["low_agreement"],
        "disagreeing_models": [],
        "blind": False,
        "priority": 1.6,
    }
    return QueueItem(**{**fields, **overrides})


def test_blocks_split_at_headings_and_units_at_list_items_but_not_inside_code():
    blocks = split_blocks(BODY)
    assert [b.heading for b in blocks] == ["", "## Rules", "## card_arrival"]
    assert len(blocks[1].units) == 2, "each list item is a unit, continuation lines stay with it"
    assert blocks[1].units[0].endswith("carries no attitude.")
    assert blocks[2].units[-1].startswith("```") and "not a heading" in blocks[2].units[-1]


def test_a_label_in_a_heading_brings_the_whole_block():
    [part] = label_sections(BODY, "card_arrival")
    assert part.startswith("## card_arrival") and "More on card_arrival." in part


def test_a_label_in_text_brings_only_the_units_that_name_it_under_their_heading():
    parts = label_sections(BODY, "neutral")
    assert (
        parts[0]
        == "## Rules\n\n1. **Facts are `neutral`.** A plain report\n   carries no attitude."
    )
    assert "Praise" not in "\n".join(parts)


def test_labels_match_as_words_in_any_case_and_with_spaces_for_underscores():
    body = "## Cards\n\nA CARD ARRIVAL question.\n\nUnrelated card_arrivals text."
    assert label_sections(body, "card_arrival") == ["## Cards\n\nA CARD ARRIVAL question."]


def test_one_letter_labels_count_only_when_marked_up():
    body = "A reply is good.\n\nThen the answer is `A`.\n\nAnd **B** wins here."
    assert label_sections(body, "A") == ["Then the answer is `A`."]
    assert label_sections(body, "B") == ["And **B** wins here."]


def test_without_a_mention_the_opening_of_the_body_stands_in():
    assert relevant_sections(BODY, "nothing-like-this") == opening(BODY)
    assert relevant_sections(BODY, []).startswith("Intro paragraph")
    long = "\n\n".join(f"Paragraph {i} " + "x" * 300 for i in range(10))
    assert len(opening(long)) < 1300 and opening(long).startswith("Paragraph 0")


def test_several_labels_come_back_in_body_order_once_each_and_cut_when_long():
    text = relevant_sections(BODY, ["card_arrival", "positive", "card_arrival"])
    assert text.index("## Rules") < text.index("## card_arrival")
    assert text.count("## card_arrival") == 1
    cut = relevant_sections(SENTIMENT.body, "negative", max_chars=500)
    assert len(cut) <= 502 and cut.endswith("…")


def test_real_guidelines_give_the_sections_a_reviewer_needs():
    assert relevant_sections(SENTIMENT.body, "neutral").startswith("## Rules")
    assert "## Harmlessness" in relevant_sections(RATING.body, ["harmlessness"])
    assert "## Choosing the type" in relevant_sections(NER.body, "product")


def test_the_database_comes_from_the_arguments_then_the_environment():
    env = {"LABELAGENT_DB": "env.duckdb"}
    assert page_state.resolve_db(["--db", "arg.duckdb"], env) == "arg.duckdb"
    assert page_state.resolve_db(["-q", "-p", "no:cacheprovider"], env) == "env.duckdb"
    assert page_state.resolve_db(["--d", "x"], {}) is None


def test_labels_and_votes_read_as_words():
    assert page_state.label_text(["sport", "music"]) == "sport, music"
    assert page_state.label_text({"helpfulness": 4}) == "helpfulness 4"
    assert page_state.label_text([{"text": "Paris", "label": "location"}]) == "Paris → location"
    assert page_state.label_text([]) == "none" and page_state.label_text(None) == "—"
    assert page_state.vote_rows(item().votes) == [("negative", 2), ("positive", 2), ("neutral", 1)]
    assert page_state.json_label_text("not json") == "not json"


def test_quick_labels_put_the_voted_labels_first_only_when_there_are_more_than_nine():
    assert page_state.quick_labels(SENTIMENT, item()) == ["negative", "neutral", "positive"]
    many = parse_guideline(
        "---\nname: many\ntask: classification\nlabels: ["
        + ", ".join(f"l{i}" for i in range(12))
        + "]\n---\nbody\n"
    )
    voted = item(votes={'"l11"': 3, '"l5"': 1})
    assert page_state.quick_labels(many, voted)[:3] == ["l11", "l5", "l0"]
    assert page_state.quick_labels(many, item(votes=voted.votes, blind=True))[0] == "l0"


def test_span_lines_round_trip_and_bad_lines_are_named():
    spans = [{"text": "Paris | France", "label": "location"}, {"text": "Lyon", "label": "location"}]
    assert page_state.parse_span_lines(page_state.spans_to_lines(spans) + "\n\n") == spans
    with pytest.raises(ValueError, match="line 2"):
        page_state.parse_span_lines("Paris | location\nLyon")
    with pytest.raises(ValueError, match="both"):
        page_state.parse_span_lines(" | location")


def test_markdown_escaping_keeps_text_literal():
    assert page_state.md_escape("*a* [b](c) $x$ :blue[y]") == (
        "\\*a\\* \\[b\\]\\(c\\) \\$x\\$ \\:blue\\[y\\]"
    )


def test_enter_accepts_the_model_label_or_records_the_pick():
    assert page_state.decide(SENTIMENT, item(), None) == ("accept", "negative")
    assert page_state.decide(SENTIMENT, item(), "negative") == ("accept", "negative")
    assert page_state.decide(SENTIMENT, item(), "Positive") == ("correct", "positive")
    with pytest.raises(ConfigError, match="Pick a label"):
        page_state.decide(SENTIMENT, item(blind=True), None)
    with pytest.raises(ConfigError, match="Pick a label"):
        page_state.decide(SENTIMENT, item(llm_label=None), None)
    assert page_state.decide(SENTIMENT, item(blind=True), "negative") == ("correct", "negative")
    with pytest.raises(ConfigError, match="does not fit"):
        page_state.decide(SENTIMENT, item(), "angry")


def test_the_answer_widgets_start_from_the_model_label_unless_blind():
    state: dict[str, Any] = {}
    spans = [{"start": 13, "end": 18, "label": "location", "text": "Paris"}]
    shown = item(task="spans", llm_label=spans)
    page_state.initial_answer_state(state, NER, shown)
    assert state == {"spans:h1:t1": "Paris | location"}
    assert (
        page_state.decide(NER, shown, page_state.answer_from_state(state, NER, shown))[0]
        == "accept"
    )
    blind: dict[str, Any] = {}
    page_state.initial_answer_state(blind, NER, item(task="spans", llm_label=spans, blind=True))
    assert blind == {"spans:h1:t1": ""}
    rating: dict[str, Any] = {}
    scored = item(task="rating", llm_label={"helpfulness": 4, "harmlessness": 5}, blind=True)
    page_state.initial_answer_state(rating, RATING, scored)
    assert page_state.answer_from_state(rating, RATING, scored) is None
    state["spans:h1:t1"] = "Paris"
    with pytest.raises(ConfigError, match="line 1"):
        page_state.answer_from_state(state, NER, shown)


def test_number_keys_pick_one_label_or_toggle_labels_of_a_multilabel_item():
    state: dict[str, Any] = {}
    page_state.pick(state, SENTIMENT, item(), "neutral")
    assert page_state.picked(state, item()) == "neutral"
    multi = item(task="multilabel", llm_label=["sport"])
    page_state.initial_answer_state(state, MULTI, multi)
    page_state.pick(state, MULTI, multi, "music")
    page_state.pick(state, MULTI, multi, "sport")
    assert page_state.answer_from_state(state, MULTI, multi) == ["music"]
    assert page_state.section_labels(state, MULTI, multi) == ["music"]


def test_the_guideline_sections_follow_the_pick_and_never_reveal_a_blind_label():
    state: dict[str, Any] = {}
    assert page_state.section_labels(state, SENTIMENT, item()) == ["negative"]
    assert page_state.section_labels(state, SENTIMENT, item(blind=True)) == []
    page_state.pick(state, SENTIMENT, item(), "neutral")
    assert page_state.section_labels(state, SENTIMENT, item(blind=True)) == ["neutral"]
    assert page_state.section_labels(state, RATING, item()) == ["helpfulness", "harmlessness"]


def test_time_on_screen_counts_from_the_first_draw():
    state: dict[str, Any] = {}
    page_state.mark_shown(state, item(), clock=lambda: 10.0)
    page_state.mark_shown(state, item(), clock=lambda: 15.0)
    assert page_state.seconds_on_screen(state, item(), clock=lambda: 22.5) == 12.5
    assert page_state.seconds_on_screen({}, item()) is None


def test_finishing_an_item_forgets_its_state_and_keeps_the_rest_of_the_batch():
    first, second = item(), item(item_id="t2")
    state: dict[str, Any] = {page_state.BATCH: [first, second], "db": "x"}
    page_state.mark_shown(state, first)
    page_state.pick(state, SENTIMENT, first, "neutral")
    state[page_state.widget_key("note", second)] = "keep"
    page_state.finish(state, first)
    assert state == {page_state.BATCH: [second], "db": "x", "note:h1:t2": "keep"}
    assert page_state.current_item(state) is second


def test_an_unchanged_filter_keeps_the_batch(monkeypatch):
    released: list[str] = []
    monkeypatch.setattr(page_state, "release", lambda db, name: released.append(name))
    state: dict[str, Any] = {page_state.BATCH: [item()], page_state.FILTER: QueueFilter()}
    page_state.set_filter(state, "db", "ann", QueueFilter())
    assert state[page_state.BATCH] and released == []
    page_state.set_filter(state, "db", "ann", QueueFilter(reason="audit"))
    assert state[page_state.BATCH] == [] and released == ["ann"]
    assert state[page_state.FILTER] == QueueFilter(reason="audit")


def test_reviews_of_a_case_sit_side_by_side():
    at = datetime(2026, 1, 1)
    reviews = [
        ReviewRow("ann", "accept", "negative", note=None, blind=False, created_at=at),
        ReviewRow("bob", "flag", None, note="unsure", blind=True, created_at=at),
    ]
    assert page_state.review_columns(reviews) == {
        "ann": ["accept", "negative", "", "no"],
        "bob": ["flag", "—", "unsure", "yes"],
    }


def test_headings_of_an_excerpt_become_bold_lines_but_not_in_code():
    text = "## Rules\n\ntext\n```\n# comment\n```\n### Edge cases ###"
    assert page_state.demote_headings(text) == (
        "**Rules**\n\ntext\n```\n# comment\n```\n**Edge cases**"
    )


def test_an_empty_span_editor_is_no_answer_and_no_entities_is_said_explicitly():
    paris = [{"start": 13, "end": 18, "label": "location", "text": "Paris"}]
    shown = item(guideline_name="ner", task="spans", llm_label=paris)
    state: dict[str, Any] = {}
    page_state.initial_answer_state(state, NER, shown)
    state[page_state.widget_key("spans", shown)] = ""
    with pytest.raises(ConfigError, match="No entities"):
        page_state.answer_from_state(state, NER, shown)  # the model's spans were cleared
    page_state.toggle_no_spans(state, shown)
    assert page_state.decide(NER, shown, page_state.answer_from_state(state, NER, shown)) == (
        "correct",
        [],
    )
    none_found = item(guideline_name="ner", task="spans", llm_label=[])
    assert page_state.answer_from_state({}, NER, none_found) is None
    assert page_state.decide(NER, none_found, None) == ("accept", [])
