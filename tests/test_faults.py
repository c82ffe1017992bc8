"""Faults in the middle of a labeling run: the model's server goes away, the budget runs out, the
database cannot be written. Nothing paid for may be lost, no item may be decided on a failure
that was not the model's answer, and a rerun of the same command finishes the job."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import GUIDELINES, REPO, rows, write_jsonl

from labelagent.calibration.rule import Thresholds
from labelagent.errors import ConfigError, ProviderUnreachable
from labelagent.guidelines import load_guideline
from labelagent.llm import RemoteBackend, RetryPolicy
from labelagent.pipeline import Labeler, RunSettings
from labelagent.simserver import SimConfig, SimServer
from labelagent.status import status
from labelagent.store import journal
from labelagent.store.db import migrate

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
PRICED = "openai/gpt-4o-mini"  # litellm prices it; the simulated server answers for it
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test"}


def corpus(tmp_path: Path, n: int) -> tuple[Path, dict[str, dict]]:
    items = [{"id": f"i{i:04d}", "text": f"text number {i}"} for i in range(n)]
    gold = {
        item["id"]: {"label": ("positive", "negative", "neutral")[i % 3]}
        for i, item in enumerate(items)
    }
    return write_jsonl(tmp_path / "items.jsonl", items), gold


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def label_in_process(db: Path, path: Path, url: str, model: str = "openai/sim", **settings):
    backend = RemoteBackend(
        model,
        api_base=url,
        api_key="sk-test",
        mode="json",
        retry=RetryPolicy(attempts=3, base=0.05, cap=0.2),
    )
    labeler = Labeler(
        db, SENTIMENT, [backend], RunSettings(**settings), Thresholds(audit_share=0), concurrency=8
    )
    return labeler.run(path)


def label_cli(db: Path, path: Path, url: str, *options: str, env: dict | None = None):
    command = [
        sys.executable, "-m", "labelagent.cli", "label", str(path), "--guideline",
        str(GUIDELINES / "sentiment.md"), "--db", str(db), "--api-base", url, "--mode", "json",
        *options,
    ]  # fmt: skip
    if "--model" not in options:
        command += ["--model", "openai/sim"]
    return subprocess.run(
        command, env=env or ENV, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def unwrapped(message: str) -> str:
    """The message without whitespace: the terminal wraps long paths and URLs anywhere."""
    return "".join(message.split())


def assert_every_item_decided_once_with_a_label(db: Path, n: int) -> None:
    assert rows(db, "SELECT count(*), count(DISTINCT item_id), count(label) FROM decisions") == [
        (n, n, n)
    ]
    assert rows(db, "SELECT count(*) FROM decisions WHERE reasons LIKE '%failed%'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM retries") == [(0,)]
    duplicates = (
        "SELECT count(*) FROM (SELECT item_id, model, sample_index FROM drafts"
        " GROUP BY ALL HAVING count(*) > 1)"
    )
    assert rows(db, duplicates) == [(0,)]
    assert rows(db, "SELECT sum(n_samples) FROM decisions") == rows(
        db, "SELECT count(*) FROM drafts"
    ), "every stored draft is part of its item's decision, none is left out or counted twice"


# The model's server goes away


def test_a_refused_connection_decides_nothing_and_a_rerun_labels_every_item(tmp_path, db):
    path, gold = corpus(tmp_path, 40)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ProviderUnreachable, match=re.escape(url)):
        label_in_process(db, path, url)  # nothing listens there
    assert rows(db, "SELECT count(*) FROM decisions") == [(0,)]
    waiting = rows(db, "SELECT count(*) FROM retries WHERE reason = 'provider'")[0][0]
    assert 5 <= waiting < 40, "the circuit breaker stopped the run before it went through the input"
    assert status(db).waiting == waiting
    with SimServer(SimConfig(accuracy=1.0, gold=gold), port=port):
        progress = label_in_process(db, path, url)
    assert progress.done == 40 and progress.waiting == 0
    assert_every_item_decided_once_with_a_label(db, 40)
    assert status(db).waiting == 0


def test_an_outage_mid_run_leaves_items_waiting_and_a_rerun_finishes_them(tmp_path, db):
    n = 300
    path, gold = corpus(tmp_path, n)
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=10)) as server:

        def outage() -> None:
            while server.counts["choices"] < 150:
                time.sleep(0.01)
            server.stop()
            time.sleep(2.0)
            server.start()

        down = threading.Thread(target=outage)
        down.start()
        with pytest.raises(ProviderUnreachable, match=re.escape(server.url)):
            label_in_process(db, path, server.url)
        down.join()
        decided = rows(db, "SELECT count(*) FROM decisions")[0][0]
        assert 0 < decided < n
        assert rows(db, "SELECT count(label) FROM decisions") == [(decided,)]
        progress = label_in_process(db, path, server.url)
    assert progress.skipped == decided
    assert_every_item_decided_once_with_a_label(db, n)


@pytest.mark.slow
def test_the_cli_stops_an_outage_early_with_exit_4_naming_the_endpoint(tmp_path, db):
    """The real retry policy (six attempts, up to about 15 s of backoff) against an outage of
    20 s: the run stops on its circuit breaker instead of going through the input."""
    n = 400
    path, gold = corpus(tmp_path, n)
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:

        def outage() -> None:
            while server.counts["choices"] < 150:
                time.sleep(0.01)
            server.stop()
            time.sleep(20.0)
            server.start()

        down = threading.Thread(target=outage)
        down.start()
        first = label_cli(db, path, server.url, "--concurrency", "8")
        down.join()
        assert first.returncode == 4, first.stderr
        assert server.url in unwrapped(first.stderr)
        decided = rows(db, "SELECT count(*) FROM decisions")[0][0]
        assert decided < n - 100, "stopped early"
        second = label_cli(db, path, server.url, "--concurrency", "8")
        assert second.returncode == 0, second.stderr
    assert_every_item_decided_once_with_a_label(db, n)


# --budget


def spent(db: Path) -> float:
    return rows(db, "SELECT coalesce(sum(cost_usd), 0) FROM drafts")[0][0]


def test_a_budget_is_never_exceeded_at_concurrency_32_nor_by_reruns(tmp_path, db):
    path, gold = corpus(tmp_path, 400)
    with SimServer(SimConfig(accuracy=0.8, gold=gold, latency_ms=5)) as server:
        budget = ["--model", PRICED, "--concurrency", "32", "--budget"]
        first = label_cli(db, path, server.url, *budget, "0.02")
        assert first.returncode == 3, first.stderr
        assert "$0.0200" in first.stderr and "spent in all" in first.stderr
        assert 0.015 < spent(db) <= 0.02
        again = label_cli(db, path, server.url, *budget, "0.02")
        assert again.returncode == 3, again.stderr
        assert "Raise --budget" in again.stderr
        assert spent(db) <= 0.02, "the budget counts what earlier runs spent"
        raised = label_cli(db, path, server.url, *budget, "0.03")
        assert raised.returncode == 3, raised.stderr
        assert 0.025 < spent(db) <= 0.03, "a higher budget goes on, up to the new total"
    assert rows(db, "SELECT count(*) FROM decisions WHERE label IS NULL") == [(0,)]


def test_a_budget_on_a_model_without_a_price_is_refused_before_any_request(tmp_path, db):
    path, gold = corpus(tmp_path, 5)
    with SimServer(SimConfig(gold=gold)) as server:
        with pytest.raises(ConfigError, match="openai/sim"):
            label_in_process(db, path, server.url, budget_usd=1.0)
        assert server.counts["requests"] == 0


# The database cannot be written


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the database's lock file, as a long transaction would."""
    script = (
        "import fcntl, sys, time\n"
        f"handle = open({str(db) + '.lock'!r}, 'a')\n"
        "fcntl.flock(handle, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def label_while(db: Path, path: Path, server: SimServer, fault, env: dict) -> subprocess.Popen:
    """Start a labeling run and, once 100 samples were served, call `fault()`."""
    command = [
        sys.executable, "-m", "labelagent.cli", "label", str(path), "--guideline",
        str(GUIDELINES / "sentiment.md"), "--db", str(db), "--model", "openai/sim",
        "--api-base", server.url, "--mode", "json", "--concurrency", "4",
    ]  # fmt: skip
    run = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while server.counts["choices"] < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    fault()
    return run


def assert_nothing_paid_was_lost(db: Path, server: SimServer, n: int) -> None:
    assert_every_item_decided_once_with_a_label(db, n)
    assert rows(db, "SELECT count(*) FROM drafts") == [(server.counts["choices"],)], (
        "every sample the server answered is stored, and none was asked for twice"
    )


def test_a_database_held_longer_than_the_wait_stops_the_run_and_keeps_its_items(tmp_path, db):
    n = 300
    path, gold = corpus(tmp_path, n)
    env = {**ENV, "LABELAGENT_DB_WAIT_SECONDS": "1"}
    holders = []
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:
        run = label_while(db, path, server, lambda: holders.append(hold_lock(db, 15)), env)
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 1, stderr
        assert str(db) in unwrapped(stderr) and ".journal.jsonl" in unwrapped(stderr), stderr
        assert Path(f"{db}.journal.jsonl").exists()
        holders[0].wait()
        second = label_cli(db, path, server.url, "--concurrency", "4", env=env)
        assert second.returncode == 0, second.stderr
    assert not Path(f"{db}.journal.jsonl").exists()
    assert_nothing_paid_was_lost(db, server, n)


def test_a_database_held_for_a_while_delays_the_run_and_loses_nothing(tmp_path, db):
    n = 200
    path, gold = corpus(tmp_path, n)
    env = {**ENV, "LABELAGENT_DB_WAIT_SECONDS": "1"}
    holders = []
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:
        run = label_while(db, path, server, lambda: holders.append(hold_lock(db, 2.5)), env)
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
    holders[0].wait()
    assert_nothing_paid_was_lost(db, server, n)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 16 MB tmpfs: a disk that can be filled up (needs the right to mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


@pytest.mark.slow
def test_a_full_disk_stops_the_run_and_keeps_every_paid_item(tmp_path, small_disk):
    n = 300
    path, gold = corpus(tmp_path, n)
    db = small_disk / "log.duckdb"
    spill = tmp_path / "spill"  # the system's temporary directory, for the run
    spill.mkdir()
    env = {**ENV, "TMPDIR": str(spill)}
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:
        run = label_while(db, path, server, lambda: fill(small_disk), env)
        _, stderr = run.communicate(timeout=180)
        assert run.returncode == 1, stderr
        assert "Nospaceleft" in unwrapped(stderr) and str(spill) in unwrapped(stderr)
        (small_disk / "filler").unlink()
        second = label_cli(db, path, server.url, "--concurrency", "4", env=env)
        assert second.returncode == 0, second.stderr
    assert list(spill.glob("*.journal.jsonl")) == []
    assert_nothing_paid_was_lost(db, server, n)


# The journal


def entry(item_id: str, run_id: str) -> dict:
    draft = {
        "item_id": item_id, "guideline_hash": "g", "prompt_hash": "p", "model": "m",
        "sample_index": 0, "run_id": run_id, "label": '"positive"', "confidence": 0.9,
        "rationale": "r", "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001,
        "latency_ms": 1.0, "error": None,
    }  # fmt: skip
    decision = {
        "item_id": item_id, "guideline_hash": "g", "run_id": run_id, "model": "m",
        "prompt_hash": "p", "label": '"positive"', "route": "auto", "reasons": "[]",
        "agreement": 1.0, "confidence": 0.9, "n_samples": 1, "n_failed": 0,
        "votes": '{"positive": 1}', "disagreeing_models": "[]", "rule": "{}",
    }  # fmt: skip
    return {"drafts": [draft], "decision": decision, "retry": None}


def test_a_journal_is_read_back_once_even_if_read_twice(db):
    migrate(db)
    written = journal.append(db, [entry("a", "r1"), entry("b", "r1")])
    assert written == Path(f"{db}.journal.jsonl")
    kept = written.read_text()
    migrate(db)  # what every command that writes does first
    assert not written.exists()
    written.write_text(kept)  # as if the first reader was killed before deleting it
    with open(written, "a") as f:
        f.write(json.dumps(entry("c", "r1"))[:40])  # a line cut short by a kill
    migrate(db)
    assert rows(db, "SELECT item_id FROM decisions ORDER BY 1") == [("a",), ("b",)]
    assert rows(db, "SELECT count(*) FROM drafts") == [(2,)]
    assert rows(db, "SELECT count(*) FROM decisions_history") == [(0,)]
