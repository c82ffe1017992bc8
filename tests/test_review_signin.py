"""Signing in to the review app: sessions kept in the log that survive a reload, expire and can
be revoked; a brake on guessing passwords that every app process, restart and browser sees; a
wrong name that costs what a wrong password costs; an address for every page. (The same in a
real browser: tests/test_review_browser_signin.py.)"""

import hashlib
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import GUIDELINES, REPO, write_jsonl
from fakes import FakeBackend
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labelagent.calibration.rule import Thresholds
from labelagent.cli import app as cli
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.review import sessions
from labelagent.review.accounts import DUMMY_HASH, Reviewer, add_reviewer, remove_reviewer
from labelagent.review_ui import page_state
from labelagent.store.db import transaction

APP = REPO / "review_ui" / "app.py"
PASSWORDS = {"ann": "ann-secret-1", "ada": "ada-secret-1"}
T0 = datetime(2026, 3, 2, 9, 0)
runner = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four sentiment items, each escalated (the five samples split), and two accounts."""
    db = tmp_path_factory.mktemp("signin") / "log.duckdb"
    rows = [{"id": f"t{i}", "text": f"tweet number {i}"} for i in range(4)]
    votes = ("positive", "negative", "neutral", "positive", "negative")
    model = FakeBackend(by_item={row["id"]: votes for row in rows})
    guideline = load_guideline(GUIDELINES / "sentiment.md")
    labeler = Labeler(db, guideline, [model], RunSettings(), Thresholds(audit_share=0.0))
    labeler.run(write_jsonl(db.parent / "items.jsonl", rows))
    add_reviewer(db, "ann", "reviewer", PASSWORDS["ann"])
    add_reviewer(db, "ada", "adjudicator", PASSWORDS["ada"])
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    db = tmp_path / "log.duckdb"
    shutil.copy(template, db)
    monkeypatch.setenv("LABELAGENT_DB", str(db))
    yield db


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with transaction(db) as con:
        return con.execute(sql, params or []).fetchall()


def attempt(db: Path, name: str, password: str, client: str, moment: datetime | None = None) -> str:
    """One sign-in (at `moment`, else now): 'ok', 'wrong', or 'wait N' (seconds)."""
    result = sessions.sign_in(db, name, password, client, moment)
    if result.wait_seconds:
        return f"wait {result.wait_seconds:g}"
    return "ok" if result.reviewer else "wrong"


def open_app(page: str | None = None) -> AppTest:
    """A new browser session, optionally opened at a page's address."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def submit_sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign-in-name").input(name)
    at.text_input(key="sign-in-password").input(password)
    [button] = [b for b in at.button if b.label == "Sign in"]
    button.click().run()
    assert not at.exception, at.exception
    return at


def press(at: AppTest, label: str) -> AppTest:
    [button] = [b for b in at.button if b.label == label]
    button.click().run()
    assert not at.exception, at.exception
    return at


def signed_in_as(at: AppTest) -> str | None:
    if page_state.REVIEWER not in at.session_state:
        return None
    return at.session_state[page_state.REVIEWER].name


def shows_sign_in_form(at: AppTest) -> bool:
    return [b.label for b in at.button] == ["Sign in"]


def title(at: AppTest) -> str | None:
    return at.title[0].value if at.title else None


def test_after_five_failures_in_a_row_a_name_waits_and_each_further_failure_doubles_the_wait(db):
    moments = [T0 + timedelta(seconds=s) for s in range(5)]
    assert [attempt(db, "ann", "guess", "10.0.0.1", m) for m in moments] == ["wrong"] * 5
    fifth = moments[-1]
    # From another computer, and with the right password, the name now waits 30 s.
    assert attempt(db, "ann", PASSWORDS["ann"], "10.0.0.2", fifth + timedelta(seconds=10)) == (
        "wait 20"
    )
    assert attempt(db, "ann", "guess", "10.0.0.2", fifth + timedelta(seconds=30)) == "wrong"
    assert attempt(db, "ann", "guess", "10.0.0.3", fifth + timedelta(seconds=31)) == "wait 59"
    assert attempt(db, "ann", PASSWORDS["ann"], "10.0.0.3", fifth + timedelta(seconds=90)) == "ok"
    assert attempt(db, "ann", "typo", "10.0.0.3", fifth + timedelta(seconds=91)) == "wrong", (
        "a success forgets the name's failures"
    )


def test_a_client_that_tries_many_names_waits_too(db):
    for i in range(5):
        assert attempt(db, f"user{i}", "guess", "10.0.0.9", T0) == "wrong"
    assert attempt(db, "ann", PASSWORDS["ann"], "10.0.0.9", T0) == "wait 30"
    assert attempt(db, "ann", PASSWORDS["ann"], "10.0.0.8", T0) == "ok", "other clients are not"


def test_a_name_without_an_account_is_counted_like_one_with_an_account(db):
    for name in ("ann", "nobody"):
        for client in ("10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5"):
            assert attempt(db, name, "guess", client, T0) == "wrong"
        assert attempt(db, name, "guess", "10.0.1.6", T0) == "wait 30", name


def test_failures_are_forgotten_a_day_after_the_last(db):
    for _ in range(5):
        attempt(db, "ann", "guess", "10.0.0.1", T0)
    later = T0 + timedelta(hours=23)
    assert attempt(db, "ann", "guess", "10.0.0.1", later) == "wrong", "the 30 s are over"
    assert attempt(db, "ann", "guess", "10.0.0.1", later) == "wait 60", "the sixth failure counts"
    a_day_on = [later + timedelta(days=1, seconds=s) for s in range(6)]
    assert [attempt(db, "ann", "guess", "10.0.0.1", m) for m in a_day_on] == ["wrong"] * 5 + [
        "wait 29"
    ]


def test_the_wait_holds_in_a_new_browser_session_since_the_log_keeps_the_count(db):
    first = open_app()
    for _ in range(5):
        submit_sign_in(first, "ann", "guess")
        assert [e.value for e in first.error] == ["Wrong reviewer name or password."]

    second = submit_sign_in(open_app(), "ann", PASSWORDS["ann"])
    [refusal] = [e.value for e in second.error]
    assert refusal.startswith("Too many failed sign-ins with this name or from this computer.")
    assert signed_in_as(second) is None and shows_sign_in_form(second)
    assert query(db, "SELECT kind, key, failures FROM sign_in_failures ORDER BY kind") == [
        ("client", "local", 5),
        ("name", "ann", 5),
    ]


def test_a_wrong_name_and_a_wrong_password_each_check_one_scrypt_hash(db, monkeypatch):
    """The same work either way (for a name without an account, a dummy hash with the same
    scrypt parameters), so the time a refusal takes does not tell which names exist."""
    checked = []
    real_scrypt = hashlib.scrypt

    def scrypt(password: bytes, *, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
        checked.append((salt.hex(), n, r, p, dklen))
        return real_scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen)

    monkeypatch.setattr(hashlib, "scrypt", scrypt)
    [[ann_hash]] = query(db, "SELECT password_hash FROM reviewers WHERE name = 'ann'")
    messages = []
    for name in ("nobody", "ann"):
        checked.clear()
        state: dict = {}
        assert not page_state.sign_in(state, db, name, "guess", "10.0.0.1")
        messages.append(state[page_state.FLASH])
        stored = DUMMY_HASH if name == "nobody" else ann_hash
        _, n, r, p, salt, _ = stored.split("$")
        assert checked == [(salt, int(n), int(r), int(p), 32)], name
    assert messages[0] == messages[1] == "Wrong reviewer name or password."
    assert DUMMY_HASH.split("$")[:4] == ann_hash.split("$")[:4], "the same scrypt cost"


def test_a_session_lasts_twelve_hours(db):
    token = sessions.sign_in(db, "ann", PASSWORDS["ann"], "local", T0).token
    ann = Reviewer("ann", "reviewer")
    assert sessions.session_reviewer(db, token, T0 + timedelta(hours=11, minutes=59)) == ann
    assert sessions.session_reviewer(db, token, T0 + timedelta(hours=12)) is None


def test_the_log_keeps_a_hash_of_the_token_never_the_token(db):
    token = sessions.sign_in(db, "ann", PASSWORDS["ann"], "local").token
    [row] = query(db, "SELECT * FROM reviewer_sessions")
    assert token not in [str(value) for value in row]
    assert hashlib.sha256(token.encode()).hexdigest() in row


def test_a_reload_resumes_the_session_from_the_token_the_browser_kept(db):
    signed: dict = {}
    assert page_state.sign_in(signed, db, "ann", PASSWORDS["ann"], "local")
    reloaded: dict = {}  # a reload starts a new Streamlit session: only the cookie is left
    assert page_state.check_session(reloaded, db, browser_token=signed[page_state.TOKEN]) == (
        Reviewer("ann", "reviewer")
    )
    assert reloaded[page_state.TOKEN] == signed[page_state.TOKEN]
    assert page_state.check_session({}, db, browser_token="made-up") is None


def test_sign_out_ends_the_session_for_every_copy_of_the_token(db):
    at = submit_sign_in(open_app(), "ann", PASSWORDS["ann"])
    token = at.session_state[page_state.TOKEN]
    press(at, "Sign out")
    assert shows_sign_in_form(at)
    assert sessions.session_reviewer(db, token) is None
    assert page_state.check_session({}, db, browser_token=token) is None


def test_a_removed_reviewer_is_signed_out_at_the_next_click_and_their_reviews_stay(db):
    at = submit_sign_in(open_app(), "ann", PASSWORDS["ann"])
    press(at, "Skip (S)")
    remove_reviewer(db, "ann")

    press(at, "Skip (S)")
    assert signed_in_as(at) is None and shows_sign_in_form(at)
    assert [e.value for e in at.error] == ["Your session has ended. Sign in again."]
    assert query(db, "SELECT item_id, reviewer, action FROM reviews") == [("t0", "ann", "skip")]
    assert query(db, "SELECT count(*) FROM claims WHERE reviewer = 'ann'") == [(0,)]
    assert query(db, "SELECT count(*) FROM reviewer_sessions WHERE revoked_at IS NULL") == [(0,)]


def test_a_new_password_ends_the_reviewers_sessions(db):
    at = submit_sign_in(open_app(), "ann", PASSWORDS["ann"])
    result = runner.invoke(
        cli, ["reviewer", "reset-password", "ann", "--db", str(db)], input="ann-new-secret\n"
    )
    assert result.exit_code == 0, result.output
    assert "their sessions ended" in " ".join(result.output.split())

    press(at, "Skip (S)")
    assert signed_in_as(at) is None and shows_sign_in_form(at)
    assert query(db, "SELECT count(*) FROM reviews") == [(0,)], "the click was not recorded"
    assert attempt(db, "ann", PASSWORDS["ann"], "local") == "wrong"
    assert attempt(db, "ann", "ann-new-secret", "local") == "ok"


def test_reviewer_commands_name_an_unknown_reviewer(db):
    for command in (["remove", "zed"], ["reset-password", "zed"]):
        result = runner.invoke(cli, ["reviewer", *command, "--db", str(db)], input="long-enough\n")
        assert result.exit_code == 1
        assert "has no reviewer 'zed'" in result.output
    result = runner.invoke(cli, ["reviewer", "list", "--db", str(db)])
    assert result.output.split() == ["ada", "adjudicator", "ann", "reviewer"]


def test_a_page_asked_for_before_signing_in_comes_up_after_signing_in(db):
    at = open_app("screens/dashboard.py")
    assert shows_sign_in_form(at)
    assert at.query_params == {"next": "dashboard"}
    submit_sign_in(at, "ann", PASSWORDS["ann"])
    assert title(at) == "Dashboard"


def test_the_sign_in_page_of_a_signed_in_reviewer_leads_to_the_queue(db):
    at = submit_sign_in(open_app(), "ann", PASSWORDS["ann"])
    at.switch_page("screens/sign_in.py").run()
    assert not shows_sign_in_form(at)
    assert "Skip (S)" in [b.label for b in at.button]


@pytest.mark.parametrize(
    ("page", "reviewer", "wanted", "goes_to"),
    [
        ("queue", None, None, ("sign-in", "queue")),
        ("", None, None, ("sign-in", "queue")),
        ("report", None, None, ("sign-in", "report")),
        ("sign-in", None, "report", None),
        ("sign-in", "reviewer", "report", ("report", "")),
        ("sign-in", "reviewer", "adjudication", ("queue", "")),
        ("sign-in", "adjudicator", "adjudication", ("adjudication", "")),
        ("sign-in", "reviewer", "https://elsewhere.example", ("queue", "")),
        ("", "reviewer", None, ("queue", "")),
        ("adjudication", "reviewer", None, ("queue", "")),
        ("adjudication", "adjudicator", None, None),
        ("dashboard", "reviewer", None, None),
    ],
)
def test_where_each_address_leads(page, reviewer, wanted, goes_to):
    who = Reviewer("someone", reviewer) if reviewer else None
    assert page_state.redirect(page, who, wanted) == goes_to
