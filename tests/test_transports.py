"""The two transports behind agent/llm.py, the client's pacing, and a server's rate limit."""

import asyncio
import subprocess
import sys

import openai
import pytest
from conftest import GUIDELINES, REPO, rows, write_jsonl

from labelagent.calibration.rule import Thresholds
from labelagent.errors import ConfigError
from labelagent.guidelines import load_guideline
from labelagent.llm import RemoteBackend
from labelagent.pipeline import Labeler, RunSettings
from labelagent.simserver import SimConfig, SimServer
from labelagent.transports import transport_for
from labelagent.transports.flow import START, Flow

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
PRICED = "openai/gpt-4o-mini"  # in litellm's price table; the simulated server answers for it
DRAFT = (
    "SELECT item_id, sample_index, label, confidence, rationale, prompt_tokens, "
    "completion_tokens, cost_usd, error FROM drafts ORDER BY item_id, sample_index"
)


def corpus(tmp_path, n: int):
    items = [{"id": f"t{i:03d}", "text": f"text number {i}"} for i in range(n)]
    labels = ("positive", "negative", "neutral")
    gold = {item["id"]: {"label": labels[i % 3]} for i, item in enumerate(items)}
    return write_jsonl(tmp_path / "items.jsonl", items), gold


def label(db, path, url: str, transport: str, mode: str, concurrency: int = 1, **flow):
    backend = RemoteBackend(
        PRICED, api_base=url, api_key="sk-test", mode=mode, transport=transport, **flow
    )
    labeler = Labeler(db, SENTIMENT, [backend], RunSettings(), Thresholds(), concurrency)
    return labeler.run(path), backend


@pytest.mark.parametrize("mode", ["tools", "json_schema", "json"])
def test_both_transports_store_the_same_drafts_for_the_same_answers(tmp_path, mode):
    """Invalid answers (half-cut JSON) and their re-asks included: one request order (one worker)
    makes the server's answers and faults the same for both."""
    path, gold = corpus(tmp_path, 30)
    stored = {}
    for transport in ("openai", "litellm"):
        config = SimConfig(accuracy=0.7, gold=gold, fault_rate=0.15, faults=("bad_json",))
        with SimServer(config) as server:
            db = tmp_path / f"{transport}.duckdb"
            label(db, path, server.url, transport, mode)
        stored[transport] = rows(db, DRAFT)
    assert stored["openai"] == stored["litellm"]
    assert any(error for *_, error in stored["openai"]), "some answers were invalid"
    assert all(cost > 0 for *_, cost, _ in stored["openai"]), "priced from litellm's table"


def test_openai_compatible_providers_go_through_the_openai_sdk_and_the_rest_through_litellm():
    assert transport_for("openai/gpt-4o-mini") == "openai"
    assert transport_for("groq/llama-3.1-8b-instant") == "openai"
    assert transport_for("anthropic/claude-3-5-haiku-latest") == "litellm"
    assert transport_for("gemini/gemini-2.0-flash") == "litellm"
    assert transport_for("openai/gpt-4o-mini", "litellm") == "litellm"
    with pytest.raises(ConfigError, match="its own protocol"):
        transport_for("anthropic/claude-3-5-haiku-latest", "openai")


def test_a_run_through_the_openai_sdk_never_imports_litellm(tmp_path):
    path, gold = corpus(tmp_path, 3)
    script = f"""
import sys
from labelagent.simserver import SimServer, SimConfig
from labelagent.cli import app
with SimServer(SimConfig(gold={gold!r})) as server:
    app(["label", {str(path)!r}, "--guideline", {str(GUIDELINES / "sentiment.md")!r},
         "--db", {str(tmp_path / "x.duckdb")!r}, "--model", "openai/sim", "--api-base",
         server.url], standalone_mode=False)
print("litellm imported" if "litellm" in sys.modules else "no litellm")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().endswith("no litellm"), result.stdout + result.stderr


def test_a_server_rate_limit_is_used_without_losing_a_sample(tmp_path, db):
    """From the default concurrency: the limit is read from the answers' headers and the run
    paces itself under it instead of retrying 429s."""
    path, gold = corpus(tmp_path, 60)
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=50, rpm=1200)) as server:
        progress, backend = label(db, path, server.url, "openai", "json", concurrency=64)
        refused = server.counts["429"]
    assert progress.done == 60 and progress.waiting == 0
    assert rows(db, "SELECT count(*) FROM drafts WHERE error IS NOT NULL") == [(0,)]
    assert backend.flow.rpm == pytest.approx(1200 * 0.95)
    assert refused <= START, "at most the first window, before the limit was known"


def test_a_429_halves_the_window_once_per_round_trip_and_answers_grow_it_back():
    async def refused(flow: Flow, answered: asyncio.Event) -> None:
        with pytest.raises(openai.RateLimitError):
            async with flow.slot():
                await answered.wait()
                raise rate_limit_error()

    async def scenario() -> list[float]:
        flow = Flow(ceiling=64)
        seen = [flow.window]
        answered = asyncio.Event()
        in_flight = [asyncio.create_task(refused(flow, answered)) for _ in range(3)]
        await asyncio.sleep(0.01)
        answered.set()  # three requests of one round trip are refused together
        await asyncio.gather(*in_flight)
        seen.append(flow.window)
        for _ in range(40):
            async with flow.slot():
                await asyncio.sleep(0)
        seen.append(flow.window)
        return seen

    start, after_429, after_answers = asyncio.run(scenario())
    assert (start, after_429) == (START, START / 2)
    assert START / 2 < after_answers < START, "additive growth after a 429, not slow start"


def rate_limit_error() -> openai.RateLimitError:
    import httpx

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(429, request=request)
    return openai.RateLimitError("rate limited", response=response, body=None)
