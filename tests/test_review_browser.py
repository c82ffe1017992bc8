"""The review app in a real browser: `labelagent review` started as a subprocess, driven by
Chromium through Playwright. A reviewer clears items with the keyboard alone, two reviewers work
at once without ever sharing an item, and nobody who is not signed in sees an item.

Set LABELAGENT_SCREENSHOTS=docs/screenshots to refresh the README's screenshots; otherwise they
are written to a temporary directory (and only checked to be taken).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, ClassVar

import pytest
from conftest import GUIDELINES, REPO, write_jsonl
from fakes import FakeBackend
from hostile import LONG_TEXT, SHOWN_AS_WRITTEN, hostile_id, hostile_text

from labelagent.calibration.rule import Thresholds
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Sample
from labelagent.review.accounts import add_reviewer
from labelagent.review.queue import set_settings
from labelagent.store.db import transaction

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORDS = {name: f"{name}-secret-1" for name in ("ann", "bob", "cy", "dee", "eve", "fay")}
ITEM_HEADING = re.compile(r"^Item \S+$")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
NEW_ITEM = """(before) => [...document.querySelectorAll("h1, h2, h3")].some(
    (h) => /^Item \\S+$/.test(h.innerText) && h.innerText !== "Item " + before)"""
MESSAGES = [
    "Flight delayed two hours but the crew handed out free coffee, so I guess it's fine",
    "New season of the podcast drops Friday. Not sure how I feel about the new host",
    "Well, that was a match. Still processing what happened in the second half",
    "The update moved every button I use. Interesting choice",
    "Got the job offer! Now I have to tell my current boss on Monday",
    "Third rainy weekend in a row, at least the garden is happy",
    "Finally finished the book everyone recommended. It was... long",
    "Our street party got cancelled, moved to next month apparently",
    "Oh great, the printer is out of toner again right before the deadline",
    "Watching the debate tonight with snacks and low expectations",
    "My phone battery lasted a whole day for once, is this a sign",
    "The cafe changed its menu: half my favourites are gone, the new cake is decent",
]
RATIONALES = {
    "positive": "Reads as relieved and upbeat overall.",
    "negative": "The complaint outweighs the rest.",
    "neutral": "Mostly a plain report of what happened.",
    "A": "A answers the actual question; B changes the subject.",
    "B": "B is more careful about the consequences.",
}
PREFERENCE_IDS = ("hh-harmless-test-0690", "hh-harmless-test-0805", "hh-harmless-test-1266")
SCREENSHOTS = (
    "review_classification.png",
    "review_preference.png",
    "review_spans.png",
    "dashboard.png",
)
TRIP = "Toni flew from Paris to Lyon with Ryanair and watched Star Wars on her iPhone"
TRIP_NAMES = [
    ("Toni", "person"),
    ("Paris", "location"),
    ("Lyon", "location"),
    ("Ryanair", "corporation"),
    ("Star Wars", "creative-work"),
    ("iPhone", "product"),
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


class SplitVotes(FakeBackend):
    """Answers each item's samples with `answers` in turn: a split vote, so every item is
    escalated with the first answer as the model's label."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__()
        self.answers = answers
        self.drawn: dict[str, int] = {}

    def _one(self, item_id: str) -> Sample:
        n = self.drawn.get(item_id, 0)
        self.drawn[item_id] = n + 1
        label = self.answers[n % len(self.answers)]
        return Sample(model=self.name, label=label, confidence=0.6, rationale=RATIONALES[label])


class SpanVotes(FakeBackend):
    """Half the samples mark `spans`, half mark nothing: escalated, the model's label `spans`."""

    def __init__(self, spans: list[dict]) -> None:
        super().__init__()
        self.spans = spans
        self.drawn = 0

    def _one(self, item_id: str) -> Sample:
        self.drawn += 1
        label = self.spans if self.drawn % 2 else []
        return Sample(model=self.name, label=label, confidence=0.6, rationale="named entities")


def spans_of(text: str, names: list[tuple[str, str]]) -> list[dict]:
    """Each name's first appearance in `text` as a span with its label."""
    return [
        {
            "start": text.index(name),
            "end": text.index(name) + len(name),
            "label": label,
            "text": name,
        }
        for name, label in names
    ]


@dataclass
class App:
    url: str
    db: Path
    texts: list[str]


def label_with(db: Path, guideline_file: str, rows: list[dict], model: FakeBackend) -> None:
    path = write_jsonl(db.parent / f"{rows[0]['id']}.jsonl", rows)
    guideline = load_guideline(GUIDELINES / guideline_file)
    thresholds = Thresholds(audit_share=0.0)
    labeler = Labeler(db, guideline, [model], RunSettings(), thresholds)
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        thread.submit(labeler.run, path).result()


def label_escalated(db: Path, guideline_file: str, rows: list[dict], answers: list[str]) -> None:
    """Label `rows` with split votes (so all are escalated), shown with the model's label."""
    label_with(db, guideline_file, rows, SplitVotes(answers))
    set_settings(db, load_guideline(GUIDELINES / guideline_file).name, 1, blind_share=0.0)
    for name, password in PASSWORDS.items():
        add_reviewer(db, name, "reviewer", password)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the review app exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the review app did not answer within {timeout} s:\n{log.read_text()}")


@contextmanager
def review_process(
    db: Path, port: int, *options: str, output: IO[str] | int = subprocess.DEVNULL
) -> Iterator[subprocess.Popen]:
    """`labelagent review --db DB --port PORT [options]` in its own process group, stopped (its
    whole group) after the block."""
    command = [sys.executable, "-m", "labelagent.cli", "review", "--db", str(db)]
    command += ["--port", str(port), *options]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def serve(db: Path, *options: str) -> Iterator[str]:
    """The review app on a free port, answering; yields its URL."""
    port = free_port()
    log = db.parent / f"review-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as output, review_process(db, port, *options, output=output) as process:
        wait_healthy(url, process, log)
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def queue_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """48 sentiment messages, each escalated with the model's label `positive` (3 of 5 votes)."""
    db = tmp_path_factory.mktemp("browser") / "log.duckdb"
    texts = [
        message if i < 12 else f"{message} (day {i // 12 + 1})"
        for i, message in enumerate(MESSAGES * 4)
    ]
    rows = [{"id": f"m{i + 1:02d}", "text": text} for i, text in enumerate(texts)]
    label_escalated(db, "sentiment.md", rows, ["positive", "negative", "positive", "neutral"])
    clear = [{"id": f"c{i:02d}", "text": f"Bus times for route {i} are online"} for i in range(72)]
    label_with(db, "sentiment.md", clear, FakeBackend(default="neutral"))  # auto-accepted
    with serve(db) as url:
        yield App(url=url, db=db, texts=texts)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("LABELAGENT_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    if not folder.is_absolute():
        folder = REPO / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Any, url: str, name: str, password: str) -> None:
    """Sign-in may use the mouse-free form: type the name and password, press Enter."""
    page.goto(url)
    page.get_by_role("textbox", name="Reviewer").fill(name)
    password_box = page.get_by_role("textbox", name="Password")
    password_box.fill(password)
    password_box.press("Enter")


def wait_idle(page: Any) -> None:
    """Until the app's script run has finished, so every widget of this run is on the page."""
    page.locator(IDLE).wait_for()


def wait_drawn(page: Any) -> None:
    """Until the script has finished and its charts and tables are drawn (they load lazily)."""
    wait_idle(page)
    page.wait_for_function("!document.querySelector('[data-testid^=\"stSkeleton\"]')")
    for testid, drawn in [("stVegaLiteChart", "canvas, svg"), ("stDataFrame", "canvas")]:
        for element in page.locator(f'[data-testid="{testid}"]').all():
            element.locator(drawn).first.wait_for()


def shown_item(page: Any) -> str:
    heading = page.get_by_role("heading", name=ITEM_HEADING)
    heading.wait_for()
    wait_idle(page)
    return heading.inner_text().removeprefix("Item ")


def press_for_next(page: Any, key: str) -> str:
    """Press a key that ends the current item; returns the id of the next item shown."""
    before = shown_item(page)
    page.keyboard.press(key)
    page.wait_for_function(NEW_ITEM, arg=before)
    return shown_item(page)


def pick_with_number_key(page: Any, number: int, label: str) -> None:
    page.keyboard.press(str(number))
    page.get_by_text(f"Your label: {label}").wait_for()
    wait_idle(page)


def reviews_by(db: Path, reviewer: str) -> list[tuple]:
    with transaction(db) as con:
        return con.execute(
            "SELECT item_id, action, label, reviewer, seconds_on_screen FROM reviews"
            " WHERE reviewer = ? ORDER BY review_id",
            [reviewer],
        ).fetchall()


def visible_item_texts(page: Any, texts: list[str]) -> list[str]:
    content = page.content()
    return [text for text in texts if text in content]


def test_a_reviewer_clears_five_items_with_the_keyboard_alone(queue_app, page):
    sign_in(page, queue_app.url, "ann", PASSWORDS["ann"])
    item = shown_item(page)
    expected = []
    for keys, action, label in [
        (["Enter"], "accept", "positive"),
        (["Enter"], "accept", "positive"),
        (["1", "Enter"], "correct", "negative"),  # 1 = negative, the first label
        (["s"], "skip", None),
        (["f"], "flag", None),
    ]:
        if keys[0] == "1":
            pick_with_number_key(page, 1, "negative")
        next_item = press_for_next(page, keys[-1])
        expected.append((item, action, label))
        item = next_item

    stored = reviews_by(queue_app.db, "ann")
    assert [(i, a, None if lab is None else json.loads(lab)) for i, a, lab, _, _ in stored] == (
        expected
    )
    assert {reviewer for _, _, _, reviewer, _ in stored} == {"ann"}
    assert all(seconds > 0 for *_, seconds in stored), "time on screen is recorded"


def test_two_reviewers_at_once_never_get_the_same_item(queue_app, browser):
    pages = {}
    for name in ("bob", "cy"):
        context = browser.new_context(viewport=VIEWPORT)
        pages[name] = context.new_page()
        sign_in(pages[name], queue_app.url, name, PASSWORDS[name])
    seen: dict[str, list[str]] = {name: [shown_item(page)] for name, page in pages.items()}
    for _ in range(6):  # past the first batch of five, so each claims again
        for name, page in pages.items():
            seen[name].append(press_for_next(page, "Enter"))
    for page in pages.values():
        page.context.close()

    assert len(set(seen["bob"])) == len(seen["bob"]) == 7
    assert not set(seen["bob"]) & set(seen["cy"]), seen


def test_a_wrong_password_is_refused_and_shows_no_item(queue_app, page):
    sign_in(page, queue_app.url, "ann", "not-the-password")
    page.get_by_text("Wrong reviewer name or password.").wait_for()
    wait_idle(page)
    assert page.get_by_role("button", name="Sign in").is_visible()
    assert page.get_by_role("heading", name=ITEM_HEADING).count() == 0
    assert visible_item_texts(page, queue_app.texts) == []


def test_without_signing_in_no_item_text_is_served(queue_app, page):
    for path in ("/", "/queue", "/dashboard"):
        with urllib.request.urlopen(queue_app.url + path, timeout=10) as response:
            html = response.read().decode()
        assert [text for text in queue_app.texts if text in html] == [], path
        page.goto(queue_app.url + path)
        page.get_by_role("button", name="Sign in").wait_for()
        wait_idle(page)
        assert page.get_by_role("heading", name=ITEM_HEADING).count() == 0, path
        assert visible_item_texts(page, queue_app.texts) == [], path


def test_screenshots_of_the_queue_and_the_dashboard(queue_app, browser, screenshots, tmp_path):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, queue_app.url, "dee", PASSWORDS["dee"])
    shown_item(page)
    wait_drawn(page)
    page.screenshot(path=screenshots / "review_classification.png")
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    wait_drawn(page)
    page.screenshot(path=screenshots / "dashboard.png")
    context.close()

    db = tmp_path / "preference.duckdb"
    samples = (REPO / "agent" / "demo_data" / "preference_sample.jsonl").read_text().splitlines()
    rows = [row for row in map(json.loads, samples) if row["id"] in PREFERENCE_IDS]
    label_escalated(db, "preference.md", rows, ["A", "B", "A", "B"])
    with serve(db) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, "dee", PASSWORDS["dee"])
        assert shown_item(page) == PREFERENCE_IDS[0]
        page.get_by_text("Response A").first.wait_for()
        page.get_by_text("Response B").first.wait_for()
        wait_drawn(page)
        page.screenshot(path=screenshots / "review_preference.png")
        context.close()

    db = tmp_path / "ner.duckdb"
    label_with(db, "ner.md", [{"id": "trip", "text": TRIP}], SpanVotes(spans_of(TRIP, TRIP_NAMES)))
    set_settings(db, "ner", 1, blind_share=0.0)
    add_reviewer(db, "dee", "reviewer", PASSWORDS["dee"])
    with serve(db) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, "dee", PASSWORDS["dee"])
        assert shown_item(page) == "trip"
        marks = page.frame_locator('[class*="st-key-spans-picker"] iframe').locator("mark")
        marks.nth(len(TRIP_NAMES) - 1).wait_for()
        wait_drawn(page)
        page.screenshot(path=screenshots / "review_spans.png")
        context.close()
    for name in SCREENSHOTS:
        assert (screenshots / name).stat().st_size > 10_000, name


def test_reviewers_get_no_deploy_button_no_menu_and_no_r_or_c_key(queue_app, page):
    sign_in(page, queue_app.url, "eve", PASSWORDS["eve"])
    shown_item(page)
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.locator('[data-testid="stMainMenu"]').count() == 0
    page.evaluate("""() => { window.runs = 0; new MutationObserver(() => {
        if (document.querySelector('[data-testid=stApp]').dataset.testScriptState === 'running')
            window.runs += 1; }).observe(document.querySelector('[data-testid=stApp]'),
        {attributes: true}); }""")
    page.keyboard.press("r")
    page.keyboard.press("c")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.runs") == 0, "R does not rerun the app"
    assert page.get_by_text("Clear caches").count() == 0
    page.keyboard.press("1")
    page.wait_for_function("window.runs > 0")  # the app's own keys still run it


def test_keys_work_after_filtering(queue_app, page):
    sign_in(page, queue_app.url, "eve", PASSWORDS["eve"])
    shown_item(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    guideline_filter = sidebar.get_by_role("combobox", name="Guideline")
    guideline_filter.click()
    page.get_by_role("option", name="sentiment").click()
    before = shown_item(page)
    assert page.evaluate("document.activeElement.getAttribute('role')") == "combobox"
    page.keyboard.press("Escape")
    wait_idle(page)
    assert guideline_filter.input_value() == "sentiment", "Escape leaves the filter alone"
    assert shown_item(page) == before
    guideline_filter.focus()
    after = press_for_next(page, "s")
    assert after != before
    assert guideline_filter.input_value() == "sentiment", "S is not typed into the filter"
    assert [(item, action) for item, action, *_ in reviews_by(queue_app.db, "eve")] == [
        (before, "skip")
    ]


def test_enter_saves_wherever_the_focus_is_and_never_clicks_the_focused_button(queue_app, page):
    """The benchmark's path: after the mouse (a click on the heading, a label picked), Enter
    saves the item; with a button focused, Enter saves and does not also press that button."""
    sign_in(page, queue_app.url, "fay", PASSWORDS["fay"])
    first = shown_item(page)
    page.get_by_role("heading", name=ITEM_HEADING).click()
    second = press_for_next(page, "Enter")
    page.get_by_role("button", name="Flag (F)").focus()
    third = press_for_next(page, "Enter")
    page.get_by_role("button", name=re.compile(r"^1 · negative")).click()
    page.get_by_text("Your label: negative").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Skip (S)").focus()
    press_for_next(page, "Enter")
    assert [(i, a, json.loads(lab)) for i, a, lab, _, _ in reviews_by(queue_app.db, "fay")] == [
        (first, "accept", "positive"),
        (second, "accept", "positive"),
        (third, "correct", "negative"),
    ]


class LoggingServer(BaseHTTPRequestHandler):
    """Any request the page makes to it is a leak: it records the path."""

    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def logger() -> Iterator[tuple[int, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), LoggingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], LoggingServer.paths
    server.shutdown()


class HostileVotes(SplitVotes):
    def _one(self, item_id: str) -> Sample:
        sample = super()._one(item_id)
        return sample.model_copy(update={"rationale": self.rationale})


def test_hostile_text_is_shown_as_written_and_loads_nothing(tmp_path, browser, logger):
    port, requests = logger
    guideline = (GUIDELINES / "sentiment.md").read_text() + (
        "\n\nMasked words such as b*tch or f*ck are insults all the same.\n\n"
        f"![diagram](http://127.0.0.1:{port}/log?guideline-image)\n"
    )
    (tmp_path / "guidelines").mkdir()
    (tmp_path / "guidelines" / "sentiment.md").write_text(guideline)
    db = tmp_path / "hostile.duckdb"
    rows = [
        {"id": hostile_id(port), "text": hostile_text(port, "text")},
        {"id": "long", "text": LONG_TEXT},
    ]
    model = HostileVotes(["positive", "negative", "positive", "neutral"])
    model.rationale = hostile_text(port, "rationale")
    path = write_jsonl(tmp_path / "hostile.jsonl", rows)
    labeler = Labeler(
        db,
        load_guideline(tmp_path / "guidelines" / "sentiment.md"),
        [model],
        RunSettings(),
        Thresholds(audit_share=0.0),
    )
    with ThreadPoolExecutor(1) as thread:
        thread.submit(labeler.run, path).result()
    set_settings(db, "sentiment", 1, blind_share=0.0)
    add_reviewer(db, "ann", "reviewer", PASSWORDS["ann"])
    add_reviewer(db, "ada", "adjudicator", PASSWORDS["dee"])
    with serve(db) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, "ann", PASSWORDS["ann"])
        page.locator("h3", has_text="Item ").wait_for()
        wait_drawn(page)
        main = page.locator('[data-testid="stMain"]').inner_text()
        for piece in SHOWN_AS_WRITTEN:
            assert piece in main, piece
        assert "Item " + hostile_id(port).replace("\u202e", "[U+202E]") in main
        assert hostile_text(port, "rationale").split("\n")[0] in main
        page.get_by_text("Whole guideline").click()
        page.get_by_text("Masked words such as").wait_for()
        guideline_text = page.get_by_text("Masked words such as").inner_text()
        assert "b*tch or f*ck" in guideline_text, "the guideline keeps masked words"
        assert page.get_by_role("link", name="diagram").count() == 1, "an image shown as a link"
        page.get_by_role("textbox", name="Note").fill(hostile_text(port, "note"))
        page.get_by_role("heading").first.click()
        page.keyboard.press("f")
        page.get_by_role("heading", name="Item long").wait_for()
        assert LONG_TEXT in page.locator('[data-testid="stMain"]').inner_text()
        context.close()

        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, "ada", PASSWORDS["dee"])
        page.get_by_role("link", name="Adjudication").wait_for()
        for name in ("Adjudication", "Dashboard", "Report"):
            page.get_by_role("link", name=name).click()
            page.get_by_role("heading", name=name).wait_for()
            wait_drawn(page)
            main = page.locator('[data-testid="stMain"]').inner_text()
            if name == "Adjudication":
                assert hostile_text(port, "note").split("\n")[0] in main
                assert "    four spaces in front" in main
        assert (
            page.locator(f'a[href*="127.0.0.1:{port}"], img[src*="127.0.0.1:{port}"]').count() == 0
        )
        context.close()
    assert requests == [], "the page asked the logging server for something"
