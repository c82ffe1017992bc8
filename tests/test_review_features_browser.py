"""What reviewers expect, in a real browser (Chromium through Playwright, as in
test_review_browser.py): spans by selecting text, undo, progress, the keys dialog, the text
filter, the model's label marked, adjudication by keyboard, long preference items at 1280x800,
and the lease and batch flags."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_review_browser import (
    MESSAGES,
    PASSWORDS,
    VIEWPORT,
    SpanVotes,
    browser,  # noqa: F401 (a fixture)
    label_escalated,
    label_with,
    press_for_next,
    pytestmark,  # noqa: F401 (slow, and skipped without Chromium)
    reviews_by,
    serve,
    shown_item,
    sign_in,
    wait_idle,
)

from labelagent.review.accounts import add_reviewer
from labelagent.review.queue import set_settings
from labelagent.store.db import transaction

PARIS = "We flew from Paris 🛫 to Lyon with Ryanair, then back to Paris"
MODEL_SPANS = [{"start": 13, "end": 18, "label": "location", "text": "Paris"}]


@dataclass
class Served:
    url: str
    db: Path


@pytest.fixture(scope="module")
def sentiment_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Twelve escalated sentiment messages (model: positive), served with a batch of three."""
    db = tmp_path_factory.mktemp("features") / "log.duckdb"
    rows = [{"id": f"m{i + 1:02d}", "text": text} for i, text in enumerate(MESSAGES)]
    label_escalated(db, "sentiment.md", rows, ["positive", "negative", "positive", "neutral"])
    add_reviewer(db, "ada", "adjudicator", "ada-secret-1")
    with serve(db, "--batch", "3", "--lease-minutes", "5") as url:
        yield Served(url, db)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:  # noqa: F811 (the imported fixture)
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def review_count(db: Path, reviewer: str) -> int:
    return len(reviews_by(db, reviewer))


def caption_text(page: Any) -> str:
    return " ".join(page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())


def test_undo_with_u_and_ctrl_z_brings_the_item_back(sentiment_app, page):
    sign_in(page, sentiment_app.url, "ann", PASSWORDS["ann"])
    first = shown_item(page)
    second = press_for_next(page, "Enter")
    assert review_count(sentiment_app.db, "ann") == 1
    assert press_for_next(page, "u") == first
    assert review_count(sentiment_app.db, "ann") == 0
    page.get_by_text(f"Undone: your accept of {first}.").wait_for()

    assert press_for_next(page, "s") == second
    assert press_for_next(page, "Control+z") == first
    assert review_count(sentiment_app.db, "ann") == 0


def test_progress_keys_dialog_and_the_model_label_mark(sentiment_app, page):
    sign_in(page, sentiment_app.url, "bob", PASSWORDS["bob"])
    shown_item(page)
    waiting = re.search(r"(\d+) waiting for you · 0 done today", caption_text(page))
    assert waiting, caption_text(page)
    assert "3 in your batch" in caption_text(page), "--batch 3"
    press_for_next(page, "Enter")
    left = int(waiting.group(1)) - 1
    assert f"{left} waiting for you · 1 done today" in caption_text(page)

    model_button = page.get_by_role("button", name="3 · positive")
    assert model_button.locator('[data-testid="stIconMaterial"]').count() == 1
    assert (
        page.get_by_role("button", name="1 · negative")
        .locator('[data-testid="stIconMaterial"]')
        .count()
        == 0
    )

    page.keyboard.press("?")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert "undo your last decision" in dialog.inner_text()


def test_the_text_filter_shows_only_matching_items(sentiment_app, page):
    sign_in(page, sentiment_app.url, "cy", PASSWORDS["cy"])
    shown_item(page)
    box = page.get_by_role("textbox", name="Text contains")
    box.fill("PRINTER")
    box.press("Enter")
    page.get_by_text("printer is out of toner").first.wait_for()
    wait_idle(page)
    assert re.search(r"\b1 of \d+ waiting for you", caption_text(page))


def test_adjudication_by_keyboard_one_case_at_a_time(sentiment_app, browser):  # noqa: F811
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, sentiment_app.url, "dee", PASSWORDS["dee"])
    flagged = [shown_item(page)]
    flagged.append(press_for_next(page, "f"))
    press_for_next(page, "f")
    context.close()

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, sentiment_app.url, "ada", "ada-secret-1")
    shown_item(page)
    page.get_by_role("link", name="Adjudication").click()
    page.get_by_role("heading", name="Adjudication").wait_for()
    assert shown_item(page) == flagged[0]
    page.keyboard.press("2")
    page.get_by_text("Final label: neutral").wait_for()
    wait_idle(page)
    assert press_for_next(page, "Enter") == flagged[1]
    with transaction(sentiment_app.db) as con:
        final = con.execute(
            "SELECT label, reviewer FROM final_labels WHERE item_id = ?", [flagged[0]]
        ).fetchall()
    assert final == [('"neutral"', "ada")]
    page.keyboard.press("s")  # leaves the last case for later
    page.get_by_role("button", name="Show skipped cases").wait_for()
    page.get_by_role("button", name="Show skipped cases").click()
    assert shown_item(page) == flagged[1]
    context.close()


def picker(page: Any) -> Any:
    frame = page.frame_locator('[class*="st-key-spans-picker"] iframe')
    frame.locator("mark").first.wait_for()
    return frame


def select_word(frame: Any, word: str, occurrence: int) -> None:
    """Select a word with the mouse: a double click on its `occurrence`-th appearance (0 first)."""
    text = frame.locator("#text")
    point = text.evaluate(
        """(el, [word, occurrence]) => {
            const text = el.textContent;
            let at = -1;
            for (let i = 0; i <= occurrence; i++) at = text.indexOf(word, at + 1);
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            let seen = 0;
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                if (at < seen + n.data.length) {
                    const range = document.createRange();
                    range.setStart(n, at - seen + 1);
                    range.setEnd(n, at - seen + 2);
                    const r = range.getBoundingClientRect();
                    const box = el.getBoundingClientRect();
                    return {x: r.x - box.x + r.width / 2, y: r.y - box.y + r.height / 2};
                }
                seen += n.data.length;
            }
            return null;
        }""",
        [word, occurrence],
    )
    text.dblclick(position=point)


def wait_for_lines(page: Any, box: Any, lines: list[str]) -> None:
    """Until the fallback box (written by the app from the picker's spans) shows `lines`."""
    page.wait_for_function(
        "([el, want]) => el.value === want", arg=[box.element_handle(), "\n".join(lines)]
    )


def test_spans_by_selecting_text_with_the_mouse_and_keys(tmp_path, browser):  # noqa: F811
    db = tmp_path / "ner.duckdb"
    label_with(db, "ner.md", [{"id": "n1", "text": PARIS}], SpanVotes(MODEL_SPANS))
    set_settings(db, "ner", 1, blind_share=0.0)
    add_reviewer(db, "ann", "reviewer", PASSWORDS["ann"])
    with serve(db) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, "ann", PASSWORDS["ann"])
        assert shown_item(page) == "n1"
        frame = picker(page)
        assert frame.locator("mark").all_inner_texts() == ["Paris"], "the model's span"

        select_word(frame, "Paris", 1)  # the second Paris, after an emoji
        page.keyboard.press("2")  # location
        frame.locator("mark").nth(1).wait_for()
        page.get_by_role("heading", name="Item n1").click()  # the focus leaves the picker
        page.keyboard.press("5")  # corporation (a number pressed on the page), then select
        select_word(frame, "Ryanair", 0)
        frame.locator("mark").nth(2).wait_for()
        lines = page.get_by_role("textbox", name="Or type the spans")
        wait_for_lines(
            page, lines, ["Paris | location", "Ryanair | corporation", "Paris | location"]
        )
        frame.locator("mark").first.click()
        page.keyboard.press("Delete")  # the model's Paris goes
        wait_for_lines(page, lines, ["Ryanair | corporation", "Paris | location"])
        page.keyboard.press("Enter")
        page.get_by_text("Nothing is waiting for you").wait_for()
        context.close()

    [(_, action, label, _, _)] = reviews_by(db, "ann")
    second = PARIS.rindex("Paris")
    assert action == "correct"
    assert json.loads(label) == [
        {
            "start": PARIS.index("Ryanair"),
            "end": PARIS.index("Ryanair") + 7,
            "label": "corporation",
            "text": "Ryanair",
        },
        {"start": second, "end": second + 5, "label": "location", "text": "Paris"},
    ]


def test_a_long_preference_item_keeps_both_responses_and_the_buttons_on_screen(
    tmp_path,
    browser,  # noqa: F811
):
    db = tmp_path / "preference.duckdb"
    long = " ".join(f"Sentence {i} of a long text that goes on." for i in range(120))
    row = {"id": "p1", "prompt": long, "response_a": long, "response_b": long}
    label_escalated(db, "preference.md", [row], ["A", "B", "A", "B"])
    with serve(db) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, "ann", PASSWORDS["ann"])
        shown_item(page)
        for name in ("Response A (response_a)", "Response B (response_b)"):
            box = page.get_by_text(name).bounding_box()
            assert box and box["y"] + box["height"] < VIEWPORT["height"], name
        accept = page.get_by_role("button", name="Accept (Enter)").bounding_box()
        assert accept and accept["y"] + accept["height"] < VIEWPORT["height"]
        context.close()
