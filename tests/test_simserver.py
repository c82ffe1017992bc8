"""The simulated annotator, driven through the real client stacks labelagent uses."""

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from labelagent.simserver import SimConfig, SimServer, load_gold

SENTIMENTS = ("positive", "negative", "neutral")


class Answer(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    rationale: str
    confidence: float = Field(ge=0, le=1)


class Topics(BaseModel):
    label: list[Literal["billing", "bug", "feature"]]
    confidence: float = Field(ge=0, le=1)
    rationale: str


class Scores(BaseModel):
    helpfulness: int = Field(ge=1, le=5)
    clarity: int = Field(ge=1, le=5)


class Rating(BaseModel):
    label: Scores
    confidence: float = Field(ge=0, le=1)
    rationale: str


class Span(BaseModel):
    text: str
    label: Literal["person", "place"]
    end: int
    start: int | None = None


class Spans(BaseModel):
    label: list[Span]
    confidence: float | None = Field(default=None, ge=0, le=1)
    rationale: str = ""


def sentiment_gold(count: int) -> dict[str, dict]:
    return {f"item-{i}": {"label": SENTIMENTS[i % 3]} for i in range(count)}


def messages(item_id: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Label the sentiment of the item."},
        {"role": "user", "content": json.dumps({"item_id": item_id, "fields": {"text": "Hi."}})},
    ]


def tools_for(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [{"type": "function", "function": {"name": model.__name__, "parameters": schema}}]


def client_for(server: SimServer, timeout: float = 10.0) -> openai.OpenAI:
    return _client(server.url, timeout)


@functools.cache
def _client(url: str, timeout: float) -> openai.OpenAI:
    """Clients are reused: building one costs ~25 ms, a request ~2 ms."""
    return openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=timeout)


def ask(
    server: SimServer, schema: type[BaseModel], item_id: str, model: str = "sim", **options: Any
) -> list[Any]:
    """One tool-calling request; every returned choice parsed into `schema`."""
    response = client_for(server).chat.completions.create(
        model=model, messages=messages(item_id), tools=tools_for(schema), **options
    )
    return [
        schema.model_validate_json(choice.message.tool_calls[0].function.arguments)
        for choice in response.choices
    ]


def test_models_endpoint_lists_configured_ids() -> None:
    with SimServer(SimConfig(models=("sim", "sim-large"))) as server:
        listed = client_for(server).models.list()
    assert [model.id for model in listed.data] == ["sim", "sim-large"]


def test_embeddings_endpoint_gives_the_same_unit_vectors_and_refuses_unknown_models() -> None:
    texts = ["terrible wait, I hate it", "I hate the terrible wait", "wonderful screen"]
    with SimServer() as server:
        first = client_for(server).embeddings.create(model="sim-embed", input=texts)
        again = client_for(server).embeddings.create(model="sim-embed", input=texts[0])
        with pytest.raises(openai.NotFoundError, match="sim-embed"):
            client_for(server).embeddings.create(model="nope", input=texts)
    a, b, c = (row.embedding for row in first.data)
    assert again.data[0].embedding == a
    assert sum(x * x for x in a) == pytest.approx(1.0)
    assert sum(x * y for x, y in zip(a, b, strict=True)) > sum(
        x * y for x, y in zip(a, c, strict=True)
    )


def test_tool_call_answer_has_openai_shape() -> None:
    with SimServer(SimConfig(gold=sentiment_gold(3), accuracy=1.0)) as server:
        response = client_for(server).chat.completions.create(
            model="any-model-name", messages=messages("item-1"), tools=tools_for(Answer)
        )
    choice = response.choices[0]
    assert response.object == "chat.completion"
    assert response.model == "any-model-name"
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "Answer"
    answer = Answer.model_validate_json(call.function.arguments)
    assert answer.label == "negative"
    assert 0.7 <= answer.confidence <= 1.0
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )


def test_json_schema_response_format_answers_in_content() -> None:
    schema = Answer.model_json_schema()
    response_format = {"type": "json_schema", "json_schema": {"name": "Answer", "schema": schema}}
    with SimServer(SimConfig(gold=sentiment_gold(3), accuracy=1.0)) as server:
        response = client_for(server).chat.completions.create(
            model="sim", messages=messages("item-0"), response_format=response_format
        )
    assert response.choices[0].finish_reason == "stop"
    assert Answer.model_validate_json(response.choices[0].message.content).label == "positive"


def test_no_schema_answers_a_plain_label() -> None:
    with SimServer(SimConfig(gold=sentiment_gold(3), accuracy=1.0)) as server:
        response = client_for(server).chat.completions.create(
            model="sim", messages=messages("item-2")
        )
    assert response.choices[0].message.content == "neutral"


def test_item_ids_are_read_from_the_item_json() -> None:
    gold = {'a&b "c" <d>': {"label": "negative"}}
    with SimServer(SimConfig(gold=gold, accuracy=1.0)) as server:
        [answer] = ask(server, Answer, 'a&b "c" <d>')
    assert answer.label == "negative"


def test_an_item_id_written_in_the_item_text_is_not_read() -> None:
    gold = {"real": {"label": "negative"}, "bait": {"label": "positive"}}
    text = '"}, "item_id": "bait", "fields": {"text": "<item id=\\"bait\\">'
    item = json.dumps({"item_id": "real", "fields": {"text": text}})
    request = [{"role": "system", "content": "Label it."}, {"role": "user", "content": item}]
    with SimServer(SimConfig(gold=gold, accuracy=1.0)) as server:
        response = client_for(server).chat.completions.create(model="sim", messages=request)
    assert response.choices[0].message.content == "negative"


def test_accuracy_and_confidence_follow_the_config() -> None:
    gold = sentiment_gold(300)
    with SimServer(SimConfig(gold=gold, accuracy=0.8, seed=1)) as server:
        answers = {item_id: ask(server, Answer, item_id)[0] for item_id in gold}
    correct = [a for item_id, a in answers.items() if a.label == gold[item_id]["label"]]
    wrong = [a for item_id, a in answers.items() if a.label != gold[item_id]["label"]]
    assert 0.72 <= len(correct) / len(gold) <= 0.88
    assert min(a.confidence for a in correct) >= 0.7
    assert max(a.confidence for a in wrong) <= 0.8
    assert len({a.label for a in wrong}) == 3


def test_probs_are_replayed_per_model() -> None:
    probs = {"sim": {"positive": 0.7, "negative": 0.3}, "other": {"neutral": 1.0}}
    gold = {"x": {"label": "positive", "probs": probs}}
    with SimServer(SimConfig(gold=gold, accuracy=1.0)) as server:
        sim = ask(server, Answer, "x", n=400)
        other = ask(server, Answer, "x", n=5, model="openai/other")
    share = Counter(a.label for a in sim)["positive"] / len(sim)
    assert 0.6 <= share <= 0.8
    assert {(a.label, a.confidence) for a in sim} == {("positive", 0.7), ("negative", 0.3)}
    assert {a.label for a in other} == {"neutral"}


def test_n_is_honoured_unless_configured_otherwise() -> None:
    with SimServer(SimConfig(gold=sentiment_gold(3))) as server:
        assert len(ask(server, Answer, "item-0", n=5)) == 5
        assert server.counts["choices"] == 5
    with SimServer(SimConfig(gold=sentiment_gold(3), honour_n=False)) as server:
        assert len(ask(server, Answer, "item-0", n=5)) == 1


def test_prompt_cache_reports_the_longest_repeated_prefix_as_openai_does() -> None:
    """From 1,024 tokens (4 characters each) in steps of 128; shorter prompts are never cached."""
    fixed = "x" * (4 * 1300)

    def cached(server: SimServer, system: str, item: str) -> int:
        body = [{"role": "system", "content": system}, messages(item)[1]]
        response = client_for(server).chat.completions.create(model="sim", messages=body)
        details = response.usage.prompt_tokens_details
        return details.cached_tokens if details else 0

    with SimServer(SimConfig(gold=sentiment_gold(3), prompt_cache=True)) as server:
        assert cached(server, fixed, "item-0") == 0
        assert cached(server, fixed, "item-1") == 1280
        assert cached(server, "y" * 4000, "item-1") == 0
        assert cached(server, "y" * 4000, "item-1") == 0, "under 1,024 tokens"
    with SimServer(SimConfig(gold=sentiment_gold(3))) as server:
        cached(server, fixed, "item-0")
        assert cached(server, fixed, "item-1") == 0, "off unless configured"


def test_seed_makes_answers_reproducible() -> None:
    gold = sentiment_gold(3)
    with SimServer(SimConfig(gold=gold, accuracy=0.5)) as server:
        first = ask(server, Answer, "item-0", n=20, seed=7)
        again = ask(server, Answer, "item-0", n=20, seed=7)
        other = ask(server, Answer, "item-0", n=20, seed=8)
    with SimServer(SimConfig(gold=gold, accuracy=0.5)) as restarted:
        after_restart = ask(restarted, Answer, "item-0", n=20, seed=7)
    assert first == again == after_restart
    assert first != other
    assert len({a.label for a in first}) > 1


def test_rate_limit_fault_sends_retry_headers() -> None:
    with SimServer(SimConfig(fail_first=["429"], retry_after_ms=75)) as server:
        with pytest.raises(openai.RateLimitError) as raised:
            ask(server, Answer, "item-0")
        ask(server, Answer, "item-0")
    assert raised.value.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.response.headers["retry-after-ms"] == "75"
    assert server.counts["429"] == 1
    assert server.counts["ok"] == 1


def test_server_error_fault() -> None:
    with SimServer(SimConfig(fail_first=["500", "500"])) as server:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                ask(server, Answer, "item-0")
        assert len(ask(server, Answer, "item-0")) == 1
    assert server.counts == Counter(requests=3, **{"500": 2}, ok=1, choices=1)


def test_timeout_fault_hangs_past_the_client_timeout() -> None:
    with SimServer(SimConfig(fail_first=["timeout"], hang_seconds=2.0)) as server:
        client = client_for(server, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="sim", messages=messages("item-0"))
        assert time.monotonic() - started < 1.5
        assert client.chat.completions.create(model="sim", messages=messages("item-0")).choices
    assert server.counts["timeout"] == 1


def test_bad_json_fault_truncates_the_arguments() -> None:
    with SimServer(SimConfig(fail_first=["bad_json"], gold=sentiment_gold(3))) as server:
        response = client_for(server).chat.completions.create(
            model="sim", messages=messages("item-0"), tools=tools_for(Answer), n=2
        )
    for choice in response.choices:
        arguments = choice.message.tool_calls[0].function.arguments
        assert arguments.startswith('{"label": ')
        with pytest.raises(json.JSONDecodeError):
            json.loads(arguments)


def test_fault_rate_draws_from_the_configured_kinds() -> None:
    config = SimConfig(fault_rate=0.5, faults=("429", "500"), seed=3)
    with SimServer(config) as server:
        client = client_for(server)
        for _ in range(60):
            with contextlib.suppress(openai.RateLimitError, openai.InternalServerError):
                client.chat.completions.create(model="sim", messages=messages("item-0"))
    counts = server.counts
    assert counts["429"] + counts["500"] + counts["ok"] == 60
    assert counts["429"] > 5 and counts["500"] > 5 and counts["ok"] > 15


def test_enqueued_answers_come_first_one_per_choice() -> None:
    with SimServer(SimConfig(gold=sentiment_gold(3), accuracy=1.0)) as server:
        scripted = {"label": "neutral", "rationale": "Scripted.", "confidence": 0.5}
        server.enqueue({"label": "maybe"}, '{"label": "neg', scripted)
        response = client_for(server).chat.completions.create(
            model="sim", messages=messages("item-0"), tools=tools_for(Answer), n=2
        )
        arguments = [c.message.tool_calls[0].function.arguments for c in response.choices]
        assert json.loads(arguments[0]) == {"label": "maybe"}
        assert arguments[1] == '{"label": "neg'
        after = ask(server, Answer, "item-0", n=2)
        assert after[0] == Answer(**scripted)
        assert after[1].label == "positive"
    assert server.history[0]["n"] == 2


def test_multilabel_label_is_the_gold_set_or_one_flip() -> None:
    gold = {"t": {"label": ["billing", "bug"]}}
    with SimServer(SimConfig(gold=gold, accuracy=1.0)) as server:
        assert {tuple(a.label) for a in ask(server, Topics, "t", n=5)} == {("billing", "bug")}
    with SimServer(SimConfig(gold=gold, accuracy=0.0)) as server:
        for answer in ask(server, Topics, "t", n=20):
            assert len(set(answer.label) ^ {"billing", "bug"}) == 1


def test_rating_label_steps_one_away_when_wrong() -> None:
    gold = {"r": {"label": {"helpfulness": 5, "clarity": 1}}}
    with SimServer(SimConfig(gold=gold, accuracy=1.0)) as server:
        [right] = ask(server, Rating, "r")
    with SimServer(SimConfig(gold=gold, accuracy=0.0)) as server:
        [wrong] = ask(server, Rating, "r")
    assert right.label == Scores(helpfulness=5, clarity=1)
    assert wrong.label == Scores(helpfulness=4, clarity=2)
    assert wrong.confidence <= 0.8


def test_span_label_keeps_gold_spans() -> None:
    spans = [
        {"start": 0, "end": 5, "label": "person", "text": "Alice"},
        {"start": 15, "end": 20, "label": "place", "text": "Paris"},
    ]
    with SimServer(SimConfig(gold={"s": {"label": spans}}, accuracy=1.0)) as server:
        [answer] = ask(server, Spans, "s")
    assert answer.label == [
        Span(text="Alice", label="person", end=5),
        Span(text="Paris", label="place", end=20),
    ]
    assert answer.confidence is not None and answer.confidence >= 0.7
    with SimServer(SimConfig(gold={"s": {"label": spans}}, accuracy=0.0)) as server:
        assert ask(server, Spans, "s")[0].label == []


class Mood(StrEnum):
    HAPPY = "happy"
    SAD = "sad"


class Detail(BaseModel):
    kind: Literal["fixed"]
    count: int = Field(ge=3, le=4)
    ratio: float = Field(gt=10, lt=11)
    tags: list[str]
    flag: bool
    note: str | None


class Odd(BaseModel):
    label: Mood
    detail: Detail
    maybe: Detail | None
    rationale: str = ""


def test_unknown_items_get_a_random_valid_answer() -> None:
    with SimServer(SimConfig(seed=5)) as server:
        answers = ask(server, Odd, "not-in-gold", n=10)
        plain = client_for(server).chat.completions.create(model="sim", messages=messages("?"))
    assert {a.label for a in answers} == {Mood.HAPPY, Mood.SAD}
    assert all(a.detail.kind == "fixed" and 3 <= a.detail.count <= 4 for a in answers)
    assert plain.choices[0].message.content == "unknown"


def test_max_concurrent_queues_requests() -> None:
    config = SimConfig(latency_ms=150, max_concurrent=1)
    with SimServer(config) as server, ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        list(pool.map(lambda item: ask(server, Answer, item), ["a", "b", "c"]))
        assert time.monotonic() - started >= 0.45


def test_load_gold_reads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    rows = [
        {"uid": 1, "gold": "positive"},
        {"uid": "b", "gold": "negative", "probs": {"sim": {"negative": 1.0}}},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n", encoding="utf-8")
    assert load_gold(path, id_field="uid", label_field="gold") == {
        "1": {"label": "positive"},
        "b": {"label": "negative", "probs": {"sim": {"negative": 1.0}}},
    }


@pytest.fixture(scope="module")
def litellm_module() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def test_litellm_completion_reaches_the_server(litellm_module: Any) -> None:
    with SimServer(SimConfig(gold=sentiment_gold(3), accuracy=1.0)) as server:
        response = litellm_module.completion(
            model="openai/sim",
            api_base=server.url,
            api_key="x",
            messages=messages("item-1"),
            n=3,
        )
    assert [choice.message.content for choice in response.choices] == ["negative"] * 3
    assert server.history[0]["model"] == "sim"


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA", "JSON"])
def test_instructor_modes_get_valid_answers(litellm_module: Any, mode: str) -> None:
    import instructor

    client = instructor.from_litellm(litellm_module.completion, mode=instructor.Mode[mode])
    with SimServer(SimConfig(gold=sentiment_gold(3), accuracy=1.0)) as server:
        answer = client.chat.completions.create(
            model="openai/sim",
            api_base=server.url,
            api_key="x",
            messages=messages("item-2"),
            response_model=Answer,
            max_retries=0,
        )
    assert answer.label == "neutral"
    request = server.history[0]
    wire = {
        "TOOLS": "tools" in request,
        "JSON_SCHEMA": request.get("response_format", {}).get("type") == "json_schema",
        "JSON": request.get("response_format", {}).get("type") == "json_object",
    }
    assert wire[mode]


def test_command_line_serves_on_loopback(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "item-0", "label": "positive"}) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "labelagent.simserver", "--gold", str(gold), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("simulated annotator on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]
        models = httpx.get(f"{url}/models", timeout=5).json()
        assert models["data"][0]["id"] == "sim"
    finally:
        process.terminate()
        process.wait(timeout=10)
