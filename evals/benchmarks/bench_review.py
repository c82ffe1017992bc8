"""How fast the review app answers a reviewer, on a large queue, in a real browser.

    python evals/benchmarks/bench_review.py                     # 100,000 items, 100 actions, ~3 min
    python evals/benchmarks/bench_review.py --items 5000 --actions 20   # smoke check, ~1 min

1. Builds a DuckDB log of `--items` sentiment items straight with SQL (no labeling run): items,
   decisions (`--escalated-share` of them escalated), `--drafts` drafts per escalated item with
   rationales, `--reviewed` items already reviewed, one guideline, one reviewer.
2. Times the queue's own functions on that file in this process (`claim` of a batch, `submit`,
   and an empty transaction = opening and closing the file), the server-side share of an action.
3. Starts `labelagent review` as a subprocess, signs in with Chromium (Playwright), and times
   - opening the queue: sign-in submitted (Enter) -> first `Item <id>` heading shown;
   - each of `--actions` key presses (Enter = accept) -> the next item's heading shown, taken in
     the page: a capturing keydown listener and a MutationObserver stamp both ends with
     `performance.now()`; also -> the script run finished (every widget drawn);
   - first, on `--span-actions` span items (first in line, blind, so no spans until one is
     picked): a word selected with a double click in the span picker and its label key pressed
     -> the app holds the span, then Enter -> the next item shown (the select-a-span-and-save
     path). There are exactly that many span items: Enter alone on an untouched blind span item
     is no answer (the app asks for spans or No entities), so the Enter presses that follow
     must all meet sentiment items.

Figures are printed with PASS/FAIL beside each target; nothing is asserted.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from labelagent.guidelines import load_guideline
from labelagent.review.accounts import add_reviewer
from labelagent.review.queue import claim, release, set_settings, submit
from labelagent.review_ui.hold import Hold
from labelagent.store import log, readback, synthetic
from labelagent.store.db import migrate, transaction
from labelagent.tasks import prompt_hash

REPO = Path(__file__).resolve().parents[2]
GUIDELINE = REPO / "guidelines" / "sentiment.md"
SPAN_GUIDELINE = REPO / "guidelines" / "ner.md"
SPAN_TEXT = "Flight {i} from Paris 🛫 to Lyon was late again"  # the emoji shifts UTF-16 offsets
PICKER_FRAME = '[class*="st-key-spans-picker"] iframe'

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REVIEWER, PASSWORD = "bench", "bench-password-1"
TARGET_MEDIAN_MS, TARGET_P95_MS = 300.0, 600.0
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ITEM_HEADINGS = """[...document.querySelectorAll("h1, h2, h3")]
    .map((h) => h.innerText).filter((t) => /^Item \\S+$/.test(t))"""
ARM = f"""(before) => {{
    const stamps = {{pressed: null, shown: null, done: null, ran: false}};
    window.__bench = stamps;
    const app = document.querySelector('[data-testid="stApp"]');
    document.addEventListener("keydown", () => {{ stamps.pressed = performance.now(); }},
                              {{capture: true, once: true}});
    const observer = new MutationObserver(() => {{
        const now = performance.now();
        const state = app.getAttribute("data-test-script-state");
        if (state !== "notRunning") stamps.ran = true;
        if (stamps.shown === null && {ITEM_HEADINGS}.some((t) => t !== "Item " + before))
            stamps.shown = now;
        if (stamps.shown !== null && stamps.ran && state === "notRunning") {{
            stamps.done = now;
            observer.disconnect();
        }}
    }});
    observer.observe(document.body, {{subtree: true, childList: true, characterData: true,
                                      attributes: true}});
}}"""
FINISHED = "() => window.__bench && window.__bench.done !== null"
ITEM_HEADING_TEXT = re.compile(r"^Item \S+$")


@dataclass
class Timing:
    shown_ms: float  # key press -> next item's heading in the page
    done_ms: float  # key press -> the script run finished
    outside_ms: float  # the same, timed by this process around press() and the wait


# --- building the log -----------------------------------------------------------------------


def build_db(db: Path, n: int, escalated_share: float, drafts: int, reviewed: int) -> str:
    """A log with `n` items; returns the guideline hash."""
    guideline = load_guideline(GUIDELINE)
    migrate(db)
    log.record_guideline(db, guideline)
    ghash, phash = guideline.content_hash, prompt_hash(guideline)
    escalated_per_100 = round(100 * escalated_share)
    with transaction(db) as con:
        synthetic.fill_sentiment(con, ghash, phash, n, escalated_per_100, drafts, reviewed)
    set_settings(db, guideline.name, overlap=1, blind_share=0.0)  # Enter accepts every item
    add_reviewer(db, REVIEWER, "reviewer", PASSWORD)
    return ghash


def describe_db(db: Path) -> str:
    with transaction(db) as con:
        counts = vars(readback.row_counts(con))
        waiting = readback.unreviewed_escalated(con)
    size = db.stat().st_size / 1e6
    parts = ", ".join(f"{n:,} {table}" for table, n in counts.items())
    return f"{parts}; {waiting:,} waiting for review; file {size:.0f} MB"


def add_span_items(db: Path, n: int) -> None:
    """`n` escalated span items, first in line (audit priority, so reviewed blind, no spans)."""
    guideline = load_guideline(SPAN_GUIDELINE)
    log.record_guideline(db, guideline)
    with transaction(db) as con:
        synthetic.add_span_items(con, guideline.content_hash, prompt_hash(guideline), SPAN_TEXT, n)


# --- the queue's functions, in this process --------------------------------------------------


def timed(action: Callable[[], Any], repeats: int) -> list[float]:
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def empty_transaction(db: Path) -> None:
    with transaction(db) as con:
        readback.ping(con)


def profile_queue(db: Path, repeats: int) -> dict[str, list[float]]:
    """Server-side costs of one action: claim a batch, submit one item, open+close the file."""
    probe = "bench-probe"
    figures = {
        "open + close the file": timed(lambda: empty_transaction(db), repeats),
        "claim a batch of 5": timed(lambda: claim(db, probe, 5), repeats),
    }
    release(db, probe)
    items = iter(claim(db, probe, repeats))
    figures["submit one review"] = timed(
        lambda: submit(db, probe, next(items), "skip", seconds_on_screen=1.0), repeats
    )
    release(db, probe)
    return figures


# --- the app in a browser --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def review_app(db: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "labelagent.cli",
        "review",
        "--db",
        str(db),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the review app did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def shown_item(page: Any) -> str:
    page.wait_for_function(f"() => {ITEM_HEADINGS}.length > 0")
    page.locator(IDLE).wait_for()
    return page.evaluate(f"() => {ITEM_HEADINGS}[0]").removeprefix("Item ")


def open_queue(page: Any, url: str) -> tuple[float, float]:
    """(ms from navigation to the sign-in form, ms from submitting it to the first item)."""
    started = time.perf_counter()
    page.goto(url)
    name_box = page.get_by_role("textbox", name="Reviewer")
    name_box.wait_for()
    form_ms = (time.perf_counter() - started) * 1000
    name_box.fill(REVIEWER)
    password_box = page.get_by_role("textbox", name="Password")
    password_box.fill(PASSWORD)
    started = time.perf_counter()
    password_box.press("Enter")
    page.wait_for_function(f"() => {ITEM_HEADINGS}.length > 0")
    return form_ms, (time.perf_counter() - started) * 1000


def one_action(page: Any, key: str) -> Timing:
    before = shown_item(page)
    page.evaluate(ARM, before)
    started = time.perf_counter()
    page.keyboard.press(key)
    try:
        page.wait_for_function(FINISHED, timeout=30_000)
    except PlaywrightTimeout:
        said = page.locator('[role="alert"]').all_inner_texts()
        raise SystemExit(
            f"{key} on item {before} showed no next item within 30 s; the page says: {said}"
        ) from None
    outside = (time.perf_counter() - started) * 1000
    stamps = page.evaluate("() => window.__bench")
    return Timing(
        shown_ms=stamps["shown"] - stamps["pressed"],
        done_ms=stamps["done"] - stamps["pressed"],
        outside_ms=outside,
    )


def pick_span(page: Any) -> float:
    """Select "Paris" with a double click and press 2 (location): ms from the key press to the
    app holding the span (its `text | label` box shows it)."""
    shown_item(page)
    frame = page.frame_locator(PICKER_FRAME)
    text = frame.locator("#text")
    text.wait_for()
    point = text.evaluate(
        """(el) => {
            const node = el.firstChild;
            const at = node.data.indexOf("Paris") + 2;
            const range = document.createRange();
            range.setStart(node, at);
            range.setEnd(node, at + 1);
            const r = range.getBoundingClientRect(), box = el.getBoundingClientRect();
            return {x: r.x - box.x + r.width / 2, y: r.y - box.y + r.height / 2};
        }"""
    )
    text.dblclick(position=point)
    box = page.get_by_role("textbox", name="Or type the spans").element_handle()
    started = time.perf_counter()
    page.keyboard.press("2")
    page.wait_for_function("(el) => el.value === 'Paris | location'", arg=box, timeout=30_000)
    held = (time.perf_counter() - started) * 1000
    page.locator(IDLE).wait_for()
    page.get_by_role("heading", name=ITEM_HEADING_TEXT).first.click()  # the page has the focus
    return held


def browse(url: str, actions: int, span_actions: int) -> tuple[tuple[float, float], Any]:
    """Sign in; `span_actions` spans picked and saved (Enter), then `actions` Enter presses."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        opening = open_queue(page, url)
        picks, saves = [], []
        for _ in range(span_actions):
            picks.append(pick_span(page))
            saves.append(one_action(page, "Enter"))
        timings = [one_action(page, "Enter") for _ in range(actions)]
        browser.close()
    return opening, (timings, picks, saves)


# --- report ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def verdict(value: float, target: float) -> str:
    return "PASS" if value < target else "FAIL"


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.0f} ms  p95 {percentile(values, 0.95):6.0f} ms"
        f"  min {min(values):5.0f}  max {max(values):6.0f}"
    )


def report(profile: dict[str, list[float]], opening: tuple[float, float], timings: list[Timing]):
    print("\nqueue functions in this process (the server-side share of one action):")
    for name, values in profile.items():
        print(f"  {name:24s} {summary(values)}")
    form_ms, queue_ms = opening
    print(f"\nopening: sign-in form shown {form_ms:.0f} ms after navigation;")
    print(f"         first item shown {queue_ms:.0f} ms after the sign-in was submitted")
    shown = [t.shown_ms for t in timings]
    median, p95 = statistics.median(shown), percentile(shown, 0.95)
    print(f"\nkey press -> next item shown ({len(timings)} actions):")
    print(
        f"  median {median:.0f} ms (target < {TARGET_MEDIAN_MS:.0f}): "
        f"{verdict(median, TARGET_MEDIAN_MS)}"
    )
    print(f"  p95    {p95:.0f} ms (target < {TARGET_P95_MS:.0f}): {verdict(p95, TARGET_P95_MS)}")
    print(f"  {summary(shown)}")
    claimed = [t.shown_ms for i, t in enumerate(timings) if (i + 1) % Hold().batch == 0]
    within = [t.shown_ms for i, t in enumerate(timings) if (i + 1) % Hold().batch != 0]
    if claimed and within:
        print(f"  next item from the batch held:  {summary(within)}")
        print(f"  a new batch claimed first:      {summary(claimed)}")
    print(
        f"key press -> page complete (script run finished): {summary([t.done_ms for t in timings])}"
    )
    print(
        f"the same, timed outside the page:                   "
        f"{summary([t.outside_ms for t in timings])}"
    )


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--escalated-share", type=float, default=0.9)
    parser.add_argument("--drafts", type=int, default=3, help="drafts per escalated item")
    parser.add_argument(
        "--reviewed", type=int, help="items reviewed already (default: a tenth of --items)"
    )
    parser.add_argument(
        "--span-actions", type=int, default=20, help="spans picked by selection and saved"
    )
    parser.add_argument("--profile-repeats", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build the log here and keep it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    if args.reviewed is None:
        args.reviewed = args.items // 10
    if not CHROMIUM.exists():
        raise SystemExit(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-review-") as folder:
        db = args.keep or Path(folder) / "review.duckdb"
        started = time.perf_counter()
        build_db(db, args.items, args.escalated_share, args.drafts, args.reviewed)
        print(f"built in {time.perf_counter() - started:.1f} s: {describe_db(db)}")
        profile = profile_queue(db, args.profile_repeats)
        add_span_items(db, args.span_actions)
        with review_app(db) as url:
            opening, (timings, picks, saves) = browse(url, args.actions, args.span_actions)
    report(profile, opening, timings)
    if picks:
        print(f"\nspans ({len(picks)} items, the picker in the page):")
        print(f"  label key -> span held by the app:   {summary(picks)}")
        shown = [t.shown_ms for t in saves]
        median, p95 = statistics.median(shown), percentile(shown, 0.95)
        print(
            f"  Enter -> next item shown:             {summary(shown)}  "
            f"({verdict(median, TARGET_MEDIAN_MS)} / {verdict(p95, TARGET_P95_MS)})"
        )


if __name__ == "__main__":
    main()
