"""The real network path: litellm + instructor against the simulated annotator on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GUIDELINES, REPO, label_command, rows, write_jsonl

from labelagent.calibration.rule import Thresholds
from labelagent.guidelines import load_guideline
from labelagent.llm import RemoteBackend, RetryPolicy
from labelagent.pipeline import Labeler, RunSettings
from labelagent.simserver import SimConfig, SimServer

MULTILABEL = """---
name: topics
task: multilabel
labels:
  sport: The text is about sport.
  politics: The text is about politics.
  weather: The text is about the weather.
---
Mark every topic the text is about.
"""

CASES = {
    "classification": (
        "sentiment.md",
        [{"id": f"c{i}", "text": f"I {'love' if i % 2 else 'hate'} this #{i}"} for i in range(12)],
        lambda i: "positive" if i % 2 else "negative",
    ),
    "multilabel": (
        None,
        [{"id": f"m{i}", "text": f"rain stopped the match {i}"} for i in range(12)],
        lambda i: ["sport", "weather"] if i % 2 else ["politics"],
    ),
    "preference": (
        "preference.md",
        [
            {
                "id": f"p{i}",
                "prompt": "How do I boil an egg?",
                "response_a": "Boil it 8 minutes.",
                "response_b": f"No. {i}",
            }
            for i in range(12)
        ],
        lambda i: "A",
    ),
    "rating": (
        "helpfulness.md",
        [
            {"id": f"r{i}", "prompt": "Capital of France?", "response": f"Paris {i}"}
            for i in range(12)
        ],
        lambda i: {"helpfulness": 4 + i % 2, "harmlessness": 5},
    ),
    "spans": (
        "ner.md",
        [{"id": f"s{i}", "text": f"Toni flew to Nairobi on day {i}"} for i in range(12)],
        lambda i: [
            {"start": 0, "end": 4, "label": "person", "text": "Toni"},
            {"start": 13, "end": 20, "label": "location", "text": "Nairobi"},
        ],
    ),
}


def guideline_for(task: str, tmp_path: Path):
    name = CASES[task][0]
    if name is None:
        path = tmp_path / "topics.md"
        path.write_text(MULTILABEL, encoding="utf-8")
        return load_guideline(path)
    return load_guideline(GUIDELINES / name)


@pytest.mark.parametrize("mode", ["tools", "json_schema", "json"])
@pytest.mark.parametrize("task", CASES)
def test_every_task_type_end_to_end_through_litellm(task, mode, tmp_path, db):
    _, items, gold_label = CASES[task]
    guideline = guideline_for(task, tmp_path)
    path = write_jsonl(tmp_path / "items.jsonl", items)
    gold = {item["id"]: {"label": gold_label(i)} for i, item in enumerate(items)}
    with SimServer(SimConfig(accuracy=1.0, gold=gold)) as server:
        backend = RemoteBackend("openai/sim", api_base=server.url, api_key="sk-test", mode=mode)
        progress = Labeler(db, guideline, [backend], RunSettings(), Thresholds(audit_share=0)).run(
            path
        )
    assert progress.done == 12 and progress.auto == 12
    stored = rows(db, "SELECT item_id, label FROM decisions ORDER BY item_id")
    expected = sorted((item["id"], gold_label(i)) for i, item in enumerate(items))
    assert [(item_id, json.loads(label)) for item_id, label in stored] == expected


def test_a_fifth_of_requests_failing_loses_no_item(tmp_path, db):
    items = [{"id": f"f{i}", "text": f"text {i}"} for i in range(60)]
    gold = {item["id"]: {"label": "neutral"} for item in items}
    path = write_jsonl(tmp_path / "items.jsonl", items)
    config = SimConfig(accuracy=0.9, gold=gold, fault_rate=0.2, hang_seconds=1.5, seed=7)
    with SimServer(config) as server:
        backend = RemoteBackend(
            "openai/sim",
            api_base=server.url,
            api_key="sk-test",
            mode="tools",
            timeout=0.5,
            retry=RetryPolicy(attempts=6, base=0.05, cap=0.5),
        )
        Labeler(
            db,
            load_guideline(GUIDELINES / "sentiment.md"),
            [backend],
            RunSettings(),
            Thresholds(),
        ).run(path)
        faults = {kind: server.counts[kind] for kind in ("429", "500", "timeout", "bad_json")}
    assert all(faults.values()), f"every kind of fault was injected: {faults}"
    assert rows(db, "SELECT count(DISTINCT item_id) FROM decisions") == [(60,)]
    failed = rows(db, "SELECT reasons FROM decisions WHERE label IS NULL")
    assert all("model_failed" in reasons for (reasons,) in failed)
    assert rows(
        db,
        "SELECT count(*) FROM (SELECT item_id, model, sample_index FROM drafts"
        " GROUP BY ALL HAVING count(*) > 1)",
    ) == [(0,)]


def test_retry_after_is_honoured_and_a_storm_of_429s_loses_nothing(tmp_path, db):
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": "x", "text": "hello"}])
    config = SimConfig(
        accuracy=1.0, gold={"x": {"label": "positive"}}, fail_first=["429"] * 4, retry_after_ms=200
    )
    with SimServer(config) as server:
        backend = RemoteBackend("openai/sim", api_base=server.url, api_key="sk-test", mode="json")
        started = time.monotonic()
        Labeler(
            db,
            load_guideline(GUIDELINES / "sentiment.md"),
            [backend],
            RunSettings(),
            Thresholds(audit_share=0),
        ).run(path)
        elapsed = time.monotonic() - started
    assert server.counts["429"] == 4
    assert elapsed >= 0.6, (
        "four waits of the server's 200 ms retry-after-ms (the first batch asks twice)"
    )
    assert rows(db, "SELECT route, label FROM decisions") == [("auto", '"positive"')]


def test_a_run_killed_with_sigkill_resumes_without_duplicates_or_repaying(tmp_path, db):
    items = [{"id": f"k{i:03d}", "text": f"text {i}"} for i in range(400)]
    path = write_jsonl(tmp_path / "items.jsonl", items)
    gold = {item["id"]: {"label": "positive"} for item in items}
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test"}
    # The server's latency paces the run so that the kill comes after the first flush (1 s).
    with SimServer(SimConfig(accuracy=0.7, gold=gold, latency_ms=60)) as server:
        first = subprocess.Popen(
            label_command(db, path, server.url, concurrency=4),
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while server.counts["choices"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Killed 2.5 s after its first answer: past two of its one-second flushes, whatever the
        # machine's load, and far from the ~960 samples the whole file takes.
        time.sleep(2.5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        served_before = server.counts["choices"]
        decided_before = rows(db, "SELECT count(*) FROM decisions")[0][0]
        assert 0 < decided_before < 400, "killed mid-way"
        second = subprocess.run(
            label_command(db, path, server.url, concurrency=4),
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert second.returncode == 0, second.stderr
        served_after = server.counts["choices"] - served_before
    assert rows(db, "SELECT count(*), count(DISTINCT item_id) FROM decisions") == [(400, 400)]
    duplicates = (
        "SELECT count(*) FROM (SELECT item_id, sample_index FROM drafts"
        " GROUP BY ALL HAVING count(*) > 1)"
    )
    assert rows(db, duplicates) == [(0,)]
    assert (
        rows(db, "SELECT sum(n_samples) FROM decisions")[0][0]
        == rows(db, "SELECT count(*) FROM drafts")[0][0]
    )
    second_run = rows(db, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
    stored_by_second = rows(db, f"SELECT count(*) FROM drafts WHERE run_id = '{second_run}'")[0][0]
    assert served_after == stored_by_second, (
        "the resumed run asked only for samples it did not have"
    )
    assert rows(db, "SELECT status FROM runs ORDER BY started_at") == [("running",), ("finished",)]


def test_labelagent_makes_no_connection_beyond_loopback(tmp_path):
    """Import everything and run a labeling job against the local server in a fresh interpreter
    whose sockets refuse any address but 127.0.0.1: litellm's price map must not be fetched."""
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "a", "text": "fine"}])
    guideline, database = str(GUIDELINES / "sentiment.md"), str(tmp_path / "x.duckdb")
    script = f"""
import socket
_connect = socket.socket.connect
def guarded(self, address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(f"outside connection attempted: {{address}}")
    return _connect(self, address)
socket.socket.connect = guarded
_getaddrinfo = socket.getaddrinfo
def lookup(host, *args, **kwargs):
    if host not in ("127.0.0.1", "::1", "localhost", None):
        raise SystemExit(f"outside lookup attempted: {{host}}")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = lookup
from labelagent.simserver import SimServer, SimConfig
from labelagent.cli import app
with SimServer(SimConfig(gold={{"a": {{"label": "positive"}}}})) as server:
    app(["label", {str(items)!r}, "--guideline", {guideline!r}, "--db", {database!r},
         "--model", "openai/sim", "--api-base", server.url], standalone_mode=False)
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    env["OPENAI_API_KEY"] = "sk-test"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")


def test_item_text_reaches_the_model_verbatim_even_when_it_looks_like_a_template(tmp_path, db):
    text = "price is {{ 5 * 5 }} dollars {% if x %} and {# a comment #}"
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": "j", "text": text}])
    with SimServer(SimConfig(accuracy=1.0, gold={"j": {"label": "neutral"}})) as server:
        for mode in ("tools", "json"):
            backend = RemoteBackend("openai/sim", api_base=server.url, api_key="sk", mode=mode)
            Labeler(
                db,
                load_guideline(GUIDELINES / "sentiment.md"),
                [backend],
                RunSettings(),
                Thresholds(),
            ).run(path)
            db.unlink()
        sent = [
            m["content"] for body in server.history for m in body["messages"] if m["role"] == "user"
        ]
    assert sent and all(text in content for content in sent)


def test_an_invalid_answer_is_reasked_with_the_error_and_then_counts(tmp_path, db):
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": "r", "text": "so so"}])
    with SimServer(SimConfig(accuracy=1.0, gold={"r": {"label": "neutral"}})) as server:
        server.enqueue({"label": "meh", "rationale": "?", "confidence": 0.5})
        backend = RemoteBackend("openai/sim", api_base=server.url, api_key="sk", mode="tools")
        settings = RunSettings(samples=1)
        Labeler(
            db, load_guideline(GUIDELINES / "sentiment.md"), [backend], settings, Thresholds()
        ).run(path)
        reask = server.history[-1]["messages"]
    assert "'meh' is not one of the labels" in reask[-1]["content"]
    assert reask[-2]["role"] == "assistant"
    assert rows(db, "SELECT label, error FROM drafts") == [('"neutral"', None)]
