"""`label --batch`: requests through the provider's batch interface, in rounds, at the batch
price, against the simulated server's Files and Batches endpoints."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import openai
import pytest
from conftest import GUIDELINES, REPO, rows, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from labelagent import prices
from labelagent.batching import check_batch
from labelagent.cli import app
from labelagent.errors import ConfigError
from labelagent.simserver import SimConfig, SimServer
from labelagent.transports.batches import LiteLLMBatches

SENTIMENT = str(GUIDELINES / "sentiment.md")
MODEL = "openai/gpt-4o-mini"  # priced in litellm's table, served by the simulated server


def items(tmp_path: Path, n: int) -> Path:
    rows_ = [{"id": f"t{i:03d}", "text": f"tweet {i}"} for i in range(n)]
    return write_jsonl(tmp_path / "items.jsonl", rows_)


def gold(n: int) -> dict[str, dict]:
    return {f"t{i:03d}": {"label": "positive"} for i in range(n)}


def label_args(db: Path, path: Path, url: str, *extra: str) -> list[str]:
    return [
        "label",
        str(path),
        "-g",
        SENTIMENT,
        "--db",
        str(db),
        "--model",
        MODEL,
        "--api-base",
        url,
        "--mode",
        "json",
        "--audit-share",
        "0",
        *extra,
    ]


def cli(db: Path, path: Path, url: str, *extra: str) -> object:
    return CliRunner().invoke(app, label_args(db, path, url, *extra))


def batch(db: Path, path: Path, url: str, *extra: str) -> object:
    return cli(db, path, url, "--batch", "--batch-poll-seconds", "0.05", *extra)


def decisions(db: Path) -> list[tuple]:
    return rows(db, "SELECT item_id, stage, route, label, n_samples FROM decisions ORDER BY 1")


def said(result: object) -> str:
    """The command's output on one line (the console wraps it)."""
    return " ".join(result.output.split())


def no_duplicate_drafts(db: Path) -> bool:
    duplicates = (
        "SELECT count(*) FROM (SELECT item_id, model, sample_index FROM drafts"
        " GROUP BY ALL HAVING count(*) > 1)"
    )
    return rows(db, duplicates) == [(0,)]


def test_batch_prices_come_from_litellms_table_else_half_the_online_price():
    assert prices.batch_price("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.375)
    assert prices.price("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert not prices.has_batch_price("gpt-3.5-turbo")
    online = prices.price("gpt-3.5-turbo", 1000, 500)
    assert prices.batch_price("gpt-3.5-turbo", 1000, 500) == pytest.approx(online / 2)
    assert prices.batch_price("openai/unknown-model", 10, 10) is None


def test_the_simulated_server_runs_a_batch_with_a_delay_and_a_line_error():
    line = {
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "sim", "messages": [{"role": "user", "content": "hi"}]},
    }
    data = "".join(json.dumps({**line, "custom_id": f"c{i}"}) + "\n" for i in range(3))
    with SimServer(SimConfig(batch_delay_seconds=0.3)) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        server.fail_next("500")
        uploaded = client.files.create(file=("in.jsonl", data.encode()), purpose="batch")
        created = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.retrieve(created.id).status == "in_progress"
        time.sleep(0.35)
        done = client.batches.retrieve(created.id)
        assert done.status == "completed"
        assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
        errors = client.files.content(done.error_file_id).content.decode().splitlines()
        assert [json.loads(e)["response"]["status_code"] for e in errors] == [500]
        assert [b.id for b in client.batches.list()] == [created.id]
        assert server.counts["batches_created"] == 1


def test_a_batch_cascade_decides_every_item_as_the_online_run_does_at_the_batch_price(tmp_path):
    """With fixed samples both runs ask each stage for K in one request; adaptive rounds are sized
    from the answers' dollars, which online runs know earlier than batches (round 1)."""
    path = items(tmp_path, 40)
    cascade = ("--escalate-to", "openai/gpt-4o", "--calibration-share", "0", "--fixed-samples")
    with SimServer(SimConfig(accuracy=0.7, gold=gold(40), seed=3)) as server:
        online = cli(tmp_path / "online.duckdb", path, server.url, *cascade)
        assert online.exit_code == 0, online.output
        online_requests = server.counts["requests"]
        batched = batch(tmp_path / "batch.duckdb", path, server.url, *cascade)
        assert batched.exit_code == 0, batched.output
        assert server.counts["requests"] == 2 * online_requests, "the same requests, in batches"
    assert decisions(tmp_path / "batch.duckdb") == decisions(tmp_path / "online.duckdb")
    assert {d[1] for d in decisions(tmp_path / "batch.duckdb")} == {0, 1}, "both stages decided"
    cost = "SELECT model, round(sum(cost_usd), 9) FROM drafts GROUP BY 1 ORDER BY 1"
    online_cost = dict(rows(tmp_path / "online.duckdb", cost))
    batch_cost = dict(rows(tmp_path / "batch.duckdb", cost))
    assert batch_cost[MODEL] == pytest.approx(online_cost[MODEL] / 2)
    assert batch_cost["openai/gpt-4o"] == pytest.approx(online_cost["openai/gpt-4o"] / 2)
    logged = rows(tmp_path / "batch.duckdb", "SELECT status, count(*) FROM batches GROUP BY 1")
    assert logged[0][0] == "consumed" and len(logged) == 1
    assert "batch price: openai/gpt-4o-mini: litellm's batch price" in batched.output


def test_a_failed_and_an_expired_batch_are_sent_again_for_their_unanswered_lines(tmp_path, db):
    path = items(tmp_path, 20)
    config = SimConfig(gold=gold(20), batch_faults=["failed", "expired"])
    with SimServer(config) as server:
        result = batch(db, path, server.url, "--fixed-samples", "--samples", "1")
        assert result.exit_code == 0, result.output
        assert server.counts["batches_created"] == 3
        assert server.counts["requests"] == 20, "each line answered once: 10 expired, 10 again"
    assert "failed (simulated_failure: The batch failed (simulated).): 20 of its 20" in said(result)
    assert "expired: 10 of its 20 requests got no answer" in said(result)
    assert rows(db, "SELECT status, n_lines FROM batches ORDER BY created_at") == [
        ("failed", 20),
        ("expired", 20),
        ("consumed", 10),
    ]
    assert rows(db, "SELECT count(DISTINCT item_id), count(*) FROM decisions") == [(20, 20)]
    assert no_duplicate_drafts(db)


def test_per_line_errors_become_failed_samples_and_waiting_items_as_online(tmp_path, db):
    path = items(tmp_path, 5)
    with SimServer(SimConfig(gold=gold(5))) as server:
        server.fail_next("500", "bad_json")
        first = batch(db, path, server.url, "--fixed-samples", "--samples", "1")
        assert first.exit_code == 4, first.output
        assert rows(db, "SELECT item_id, reason FROM retries") == [("t000", "provider")]
        assert "HTTP 500" in rows(db, "SELECT error FROM retries")[0][0]
        failed = rows(db, "SELECT item_id, error FROM drafts WHERE error IS NOT NULL")
        assert [f[0] for f in failed] == ["t001"] and "invalid answer" in failed[0][1]
        assert rows(db, "SELECT count(*) FROM decisions") == [(4,)]
        again = batch(db, path, server.url, "--fixed-samples", "--samples", "1")
        assert again.exit_code == 0, again.output
    assert rows(db, "SELECT count(*) FROM decisions") == [(5,)]
    assert rows(db, "SELECT count(*) FROM retries") == [(0,)]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("anthropic/claude-3-5-haiku-20241022", "litellm does not implement Anthropic batch"),
        ("deepseek/deepseek-chat", "deepseek, which has no batch interface"),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "litellm cannot list Bedrock"),
    ],
)
def test_batch_with_a_provider_without_a_batch_interface_is_refused_before_any_call(
    tmp_path, db, model, message, monkeypatch
):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    args = ["label", str(items(tmp_path, 2)), "-g", SENTIMENT, "--db", str(db)]
    result = CliRunner().invoke(app, [*args, "--model", model, "--batch"])
    assert result.exit_code == 1
    assert message in said(result)
    assert "nothing was sent" in said(result)
    assert not db.exists()


def test_batch_with_budget_is_refused_before_any_call(tmp_path, db):
    with SimServer(SimConfig(gold=gold(2))) as server:
        result = batch(db, items(tmp_path, 2), server.url, "--budget", "1")
        assert result.exit_code == 1 and "--budget cannot be combined with --batch" in (
            said(result)
        )
        assert server.counts["files_uploaded"] == 0


def test_a_batch_created_but_not_logged_is_found_again_not_created_twice(tmp_path, db):
    """As if killed between creating the batch and logging its id: the next run finds the
    batch made from the logged input file."""
    path = items(tmp_path, 6)
    with SimServer(SimConfig(gold=gold(6), batch_faults=["none"])) as server:
        first = batch(db, path, server.url, "--fixed-samples", "--samples", "1")
        assert first.exit_code == 0
        created = server.counts["batches_created"]
        # Roll the log back to the moment before the batch id was written.
        con = duckdb.connect(str(db))
        con.execute("UPDATE batches SET status = 'uploaded', batch_id = NULL")
        con.execute("DELETE FROM decisions")
        con.execute("DELETE FROM drafts")
        con.close()
        assert rows(db, "SELECT status, batch_id FROM batches") == [("uploaded", None)]
        again = batch(db, path, server.url, "--fixed-samples", "--samples", "1")
        assert again.exit_code == 0, again.output
        assert server.counts["batches_created"] == created, "found, not created again"
    assert rows(db, "SELECT count(*) FROM decisions") == [(6,)]


@pytest.mark.slow
def test_a_batch_run_killed_while_its_batch_is_pending_resumes_without_paying_twice(tmp_path, db):
    path = items(tmp_path, 200)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test"}
    with SimServer(SimConfig(accuracy=0.7, gold=gold(200), batch_delay_seconds=2.0)) as server:
        command = [sys.executable, "-m", "labelagent.cli", *label_args(db, path, server.url)]
        command += ["--batch", "--batch-poll-seconds", "0.1"]
        first = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while server.counts["batches_created"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the batch id is logged before the first poll
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert server.counts["batches_created"] == 1 and server.counts["requests"] == 0
        assert rows(db, "SELECT status, batch_id IS NOT NULL FROM batches") == [("submitted", True)]
        second = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        assert "open batches of an earlier run: 1; polling them" in second.stderr
        created = server.counts["batches_created"]
        lines = server.counts["requests"]
    assert rows(db, "SELECT count(*), count(DISTINCT item_id) FROM decisions") == [(200, 200)]
    assert rows(db, "SELECT count(*), count(DISTINCT batch_id) FROM batches") == [
        (created, created)
    ], "every batch the server made is logged once"
    assert rows(db, "SELECT sum(n_lines) FROM batches") == [(lines,)], "no line sent twice"
    assert no_duplicate_drafts(db)
    assert (
        rows(db, "SELECT sum(n_samples) FROM decisions")[0][0]
        == rows(db, "SELECT count(*) FROM drafts")[0][0]
    )


def test_plan_with_batch_prices_the_run_at_the_batch_price_and_says_where_it_halved(tmp_path):
    path = items(tmp_path, 10)
    args = ["plan", str(path), "-g", SENTIMENT, "--db", str(tmp_path / "log.duckdb"), "--json"]
    args += ["--model", MODEL, "--escalate-to", "gpt-3.5-turbo"]
    online = json.loads(CliRunner().invoke(app, args).output)
    batched = json.loads(CliRunner().invoke(app, [*args, "--batch"]).output)
    for was, now in zip(online["models"], batched["models"], strict=True):
        assert now["max_cost_usd"] == pytest.approx(was["max_cost_usd"] / 2, rel=0.01)
    assert "for gpt-3.5-turbo it has none, so half the online price" in batched["note"]


def test_an_item_a_line_error_leaves_waiting_asks_its_jury_nothing_more(tmp_path, db):
    split = {"positive": 0.5, "negative": 0.5}
    table = {"t000": {"label": "positive", "probs": {"gpt-4o-mini": split, "gpt-4o": split}}}
    with SimServer(SimConfig(gold=table)) as server:
        server.fail_next("500")
        result = batch(db, items(tmp_path, 1), server.url, "--jury", "openai/gpt-4o")
        assert result.exit_code == 4, result.output
    assert rows(db, "SELECT item_id, reason FROM retries") == [("t000", "provider")]
    asked = rows(
        db, "SELECT b.round, l.model FROM batch_lines l JOIN batches b USING (submission_id)"
    )
    assert sorted(asked) == [(1, "openai/gpt-4o"), (1, MODEL)], "nothing asked once it waits"


def test_litellms_batch_functions_drive_an_openai_compatible_batch_interface():
    """The calls LiteLLMBatches makes for azure and vertex_ai, here routed to litellm's openai
    implementation and the simulated server."""
    line = {"custom_id": "c0", "method": "POST", "url": "/v1/chat/completions"}
    line["body"] = {"model": "sim", "messages": [{"role": "user", "content": "hi"}]}

    async def roundtrip(url: str) -> tuple:
        client = LiteLLMBatches("openai", {"api_base": url, "api_key": "sk-test", "timeout": 10})
        file_id = await client.upload("in.jsonl", (json.dumps(line) + "\n").encode())
        batch_id = await client.create(file_id)
        state = await client.retrieve(batch_id)
        output = await client.content(state.output_file_id)
        return batch_id, await client.find(file_id), state.status, json.loads(output)

    with SimServer(SimConfig()) as server:
        batch_id, found, status, output = asyncio.run(roundtrip(server.url))
    assert (found, status, output["custom_id"]) == (batch_id, "completed", "c0")
    assert output["response"]["status_code"] == 200


def test_batch_through_the_litellm_transport_reaches_the_same_batch_interface(
    tmp_path, db, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with SimServer(SimConfig(gold=gold(4))) as server:
        result = batch(db, items(tmp_path, 4), server.url, "--transport", "litellm")
        assert result.exit_code == 0, result.output
        assert server.counts["batches_created"] >= 1
    assert rows(db, "SELECT count(*) FROM decisions") == [(4,)]


def test_a_batch_whose_creation_answer_was_lost_is_found_not_created_again(tmp_path, db):
    config = SimConfig(gold=gold(4), lost_batch_creations=1)
    with SimServer(config) as server:
        result = batch(db, items(tmp_path, 4), server.url, "--fixed-samples", "--samples", "1")
        assert result.exit_code == 0, result.output
        assert server.counts["batches_created"] == 1
    assert rows(db, "SELECT count(*), count(DISTINCT batch_id) FROM batches") == [(1, 1)]
    assert rows(db, "SELECT count(*) FROM decisions") == [(4,)]


def test_batch_with_a_model_that_runs_on_this_machine_is_refused():
    with pytest.raises(ConfigError, match=r"local:model\.gguf runs on this machine"):
        check_batch([FakeBackend("local:model.gguf")])


def test_rounds_of_batches_that_all_fail_stop_the_run_with_the_providers_reasons(tmp_path, db):
    with SimServer(SimConfig(gold=gold(3), batch_faults=["failed"] * 3)) as server:
        result = batch(db, items(tmp_path, 3), server.url)
        assert result.exit_code == 4, result.output
        assert server.counts["batches_created"] == 3
    assert "3 rounds of batches in a row answered nothing" in said(result)
    assert "The batch failed (simulated)" in said(result)
    assert rows(db, "SELECT count(*) FROM decisions") == [(0,)]
    assert rows(db, "SELECT status FROM runs") == [("stopped",)]
