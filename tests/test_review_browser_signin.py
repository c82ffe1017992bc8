"""Signing in to the review app in a real browser: a reload keeps the reviewer signed in on the
same page, every page has an address that works before and after signing in, and a reviewer
removed while signed in is signed out at their next click."""

from collections.abc import Iterator
from typing import Any

import pytest
from test_review_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ITEM_HEADING,
    NEW_ITEM,
    PASSWORDS,
    VIEWPORT,
    App,
    label_escalated,
    reviews_by,
    serve,
    shown_item,
    sign_in,
    visible_item_texts,
    wait_idle,
)

from labelagent.review.accounts import remove_reviewer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """Twenty escalated sentiment messages and the four accounts of PASSWORDS."""
    db = tmp_path_factory.mktemp("signin") / "log.duckdb"
    texts = [f"Message number {i} about the weather" for i in range(20)]
    rows = [{"id": f"s{i:02d}", "text": text} for i, text in enumerate(texts)]
    label_escalated(db, "sentiment.md", rows, ["positive", "negative", "positive", "neutral"])
    with serve(db) as url:
        yield App(url=url, db=db, texts=texts)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def sign_in_form(page: Any) -> None:
    page.get_by_role("button", name="Sign in").wait_for()
    wait_idle(page)


def fill_sign_in(page: Any, name: str) -> None:
    page.get_by_role("textbox", name="Reviewer").fill(name)
    password = page.get_by_role("textbox", name="Password")
    password.fill(PASSWORDS[name])
    password.press("Enter")


def path_of(page: Any) -> str:
    return page.url.split("://", 1)[1].split("/", 1)[1]


def test_a_reload_keeps_the_reviewer_signed_in_on_the_same_page(app, page):
    sign_in(page, app.url, "ann", PASSWORDS["ann"])
    item = shown_item(page)
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    wait_idle(page)
    page.reload()
    page.get_by_role("heading", name="Dashboard").wait_for()
    wait_idle(page)
    assert path_of(page) == "dashboard"
    assert page.get_by_role("button", name="Sign in").count() == 0
    assert page.get_by_text("Signed in as ann").is_visible()

    page.goto(f"{app.url}/queue")
    assert shown_item(page) == item, "the batch the reviewer holds comes back"
    page.reload()
    assert shown_item(page) == item
    assert page.get_by_text("Page not found").count() == 0


def test_a_page_opened_before_signing_in_comes_up_after_signing_in(app, page):
    for wanted, heading in [("queue", ITEM_HEADING), ("dashboard", "Dashboard")]:
        page.context.clear_cookies()
        page.goto(f"{app.url}/{wanted}")
        sign_in_form(page)
        assert path_of(page) == f"sign-in?next={wanted}"
        assert page.get_by_text("Page not found").count() == 0
        fill_sign_in(page, "bob")
        page.get_by_role("heading", name=heading).wait_for()
        wait_idle(page)
        assert path_of(page) == wanted


def test_the_sign_in_address_when_signed_in_leads_to_the_queue(app, page):
    sign_in(page, app.url, "cy", PASSWORDS["cy"])
    shown_item(page)
    page.goto(f"{app.url}/sign-in")
    shown_item(page)
    assert path_of(page) == "queue"
    assert page.get_by_role("button", name="Sign in").count() == 0


def test_sign_out_stays_signed_out_after_a_reload(app, page):
    sign_in(page, app.url, "cy", PASSWORDS["cy"])
    shown_item(page)
    page.get_by_role("button", name="Sign out").click()
    sign_in_form(page)
    page.reload()
    sign_in_form(page)
    assert page.get_by_role("heading", name=ITEM_HEADING).count() == 0


def test_a_reviewer_removed_while_signed_in_is_signed_out_at_the_next_click(app, page):
    sign_in(page, app.url, "dee", PASSWORDS["dee"])
    first = shown_item(page)
    page.keyboard.press("s")
    page.wait_for_function(NEW_ITEM, arg=first)
    wait_idle(page)
    remove_reviewer(app.db, "dee")

    page.keyboard.press("s")
    page.get_by_text("Your session has ended. Sign in again.").wait_for()
    sign_in_form(page)
    assert [(item, action) for item, action, *_ in reviews_by(app.db, "dee")] == [(first, "skip")]
    page.reload()
    sign_in_form(page)
    assert visible_item_texts(page, app.texts) == []
