"""The aiohttp application: OpenAI-style chat completions answered from a gold table (and
Anthropic's Messages API, agent/simserver/anthropic.py)."""

import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from labelagent.simserver.config import BATCH_FAULT_KINDS, SimConfig
from labelagent.simserver.embeddings import embeddings_response
from labelagent.simserver.faults import FaultPlan, rate_limited, server_error, truncate
from labelagent.simserver.labels import (
    TEXT_LABEL,
    AnswerPlan,
    compile_plan,
    draw_answer,
    draw_label,
)
from labelagent.simserver.ratelimit import RequestLimit
from labelagent.simserver.schema_fill import Schema, find_embedded_schema

MAX_CHOICES = 128
# OpenAI's automatic prompt caching: prompts of 1,024 tokens or more, cached in steps of 128.
CACHE_MIN_TOKENS, CACHE_STEP_TOKENS = 1024, 128
_PLAN_CACHE_SIZE = 256
_FALLBACK_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string"},
    },
    "required": ["label", "confidence", "rationale"],
}


@dataclass(frozen=True)
class Target:
    """How to answer: "tools" (tool call arguments), "json" (JSON content) or "text"."""

    mode: str
    plan: AnswerPlan | None = None
    tool_name: str = ""


def _string_labels(gold: dict[str, dict]) -> tuple[str, ...]:
    """Every distinct string gold label: what a plain-text answer can choose from."""
    return tuple(
        sorted({row["label"] for row in gold.values() if isinstance(row.get("label"), str)})
    )


class SimState:
    """Everything the handlers share: config, RNG, scripted answers, counters, history."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.faults = FaultPlan(config, self.rng)
        self.answers: deque[dict | str] = deque()
        self.history: list[dict] = []
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.slots: asyncio.Semaphore | None = (
            asyncio.Semaphore(config.max_concurrent) if config.max_concurrent else None
        )
        self.label_pool = _string_labels(config.gold)
        self.limit = RequestLimit(config.rpm) if config.rpm else None
        self._plans: dict[str, AnswerPlan | None] = {}
        self._ids = itertools.count(1)
        self.prompt_cache: set[bytes] = set()  # hashes of the prompt prefixes seen
        self.files: dict[str, tuple[dict, bytes]] = {}  # file id -> (file object, content)
        self.batches: dict[str, dict] = {}
        self.batch_due: dict[str, float] = {}  # unfinished batch id -> when it finishes
        self.batch_faults: deque[str] = deque(config.batch_faults)

    def next_batch_fault(self) -> str | None:
        """ "failed", "expired" or None for the next batch to finish: scripted, then random."""
        if self.batch_faults:
            fault = self.batch_faults.popleft()
            return None if fault == "none" else fault
        if self.config.batch_fault_rate and self.rng.random() < self.config.batch_fault_rate:
            return self.rng.choice(BATCH_FAULT_KINDS[1:])
        return None

    def record(self, body: dict) -> None:
        with self.lock:
            if self.config.keep_history:
                self.history.append(body)
            self.counts["requests"] += 1

    def count(self, key: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[key] += amount

    def next_id(self) -> int:
        return next(self._ids)

    def plan(self, key: str, make_schema: Callable[[], Schema | None]) -> AnswerPlan | None:
        """The compiled plan for a schema, cached by `key` (the schema's or prompt's text)."""
        if key in self._plans:
            return self._plans[key]
        schema = make_schema()
        plan = compile_plan(schema) if schema else None
        if len(self._plans) >= _PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[key] = plan
        return plan


STATE = web.AppKey("state", SimState)


def _message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def find_item_id(messages: list[dict]) -> str | None:
    """The `item_id` of the last user message that is an item as labelagent sends it: one JSON
    object with `item_id` and `fields` (re-asks come later and are not JSON). The item's text is
    inside JSON strings there, so nothing in it can name another item."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        text = _message_text(message).strip()
        if not text.startswith("{"):
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("item_id"), str):
            return data["item_id"]
    return None


def _schema_plan(state: SimState, schema: Any) -> AnswerPlan | None:
    if not isinstance(schema, dict):
        return None
    return state.plan(json.dumps(schema, separators=(",", ":")), lambda: schema)


def _embedded_plan(state: SimState, messages: list[dict]) -> AnswerPlan | None:
    """The schema pasted into the prompt, looked for in system messages first (cacheable)."""
    system = "\n".join(_message_text(m) for m in messages if m.get("role") == "system")
    plan = state.plan("system:" + system, lambda: find_embedded_schema(system))
    if plan is not None:
        return plan
    rest = "\n".join(_message_text(m) for m in messages if m.get("role") != "system")
    schema = find_embedded_schema(rest)
    return compile_plan(schema) if schema else None


def _chosen_tool(tools: list[dict], tool_choice: Any) -> dict:
    """The function named by `tool_choice`, else the first tool's."""
    functions = [tool.get("function") or {} for tool in tools]
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        return next((f for f in functions if f.get("name") == wanted), functions[0])
    return functions[0]


def locate_target(state: SimState, body: dict) -> Target:
    """Where the request wants its structured answer, and against which schema."""
    tools = body.get("tools") or []
    if tools:
        function = _chosen_tool(tools, body.get("tool_choice"))
        plan = _schema_plan(state, function.get("parameters") or {"type": "object"})
        return Target("tools", plan, function.get("name", "answer"))
    response_format = body.get("response_format") or {}
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return Target("json", _schema_plan(state, schema) or _schema_plan(state, _FALLBACK_SCHEMA))
    if kind == "json_object":
        plan = _schema_plan(state, response_format.get("schema"))
        plan = plan or _embedded_plan(state, body.get("messages") or [])
        return Target("json", plan or _schema_plan(state, _FALLBACK_SCHEMA))
    return Target("text")


def _choice_rng(state: SimState, body: dict, item_id: str | None, index: int) -> random.Random:
    seed = body.get("seed")
    if seed is None:
        return state.rng
    return random.Random(f"{state.config.seed}|{seed}|{item_id}|{body.get('model')}|{index}")


def _generate(state: SimState, target: Target, body: dict, item_id: str | None, index: int) -> Any:
    config = state.config
    gold = config.gold.get(item_id) if item_id is not None else None
    rng = _choice_rng(state, body, item_id, index)
    model = str(body.get("model", ""))
    if target.plan is None:
        draw = draw_label(TEXT_LABEL, gold, model, config.accuracy, {}, rng, state.label_pool)
        return str(draw.label)
    return draw_answer(target.plan, gold, model, config.accuracy, rng, state.label_pool)


def _serialize(answer: Any, target: Target) -> str:
    if isinstance(answer, str):
        return answer
    return json.dumps(answer, ensure_ascii=False)


def _choice(state: SimState, target: Target, text: str, index: int) -> dict:
    if target.mode == "tools":
        call = {
            "id": f"call_{state.next_id():08x}",
            "type": "function",
            "function": {"name": target.tool_name, "arguments": text},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"index": index, "message": message, "finish_reason": "tool_calls"}
    message = {"role": "assistant", "content": text}
    return {"index": index, "message": message, "finish_reason": "stop"}


def build_completion(state: SimState, body: dict, fault: str | None) -> dict:
    """The completion body: n choices, scripted answers first unless this request is faulty."""
    messages = body.get("messages") or []
    target = locate_target(state, body)
    item_id = find_item_id(messages)
    n = max(1, min(int(body.get("n") or 1), MAX_CHOICES)) if state.config.honour_n else 1
    choices, completion_tokens = [], 0
    for index in range(n):
        if fault is None and state.answers:
            answer = state.answers.popleft()
        else:
            answer = _generate(state, target, body, item_id, index)
        text = _serialize(answer, target)
        if fault == "bad_json":
            text = truncate(text)
        completion_tokens += len(text) // 4 + 1
        choices.append(_choice(state, target, text, index))
    state.count("choices", n)
    prompt_tokens = max(1, sum(len(_message_text(m)) for m in messages) // 4)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if state.config.prompt_cache:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens(state, body, messages)}
    return {
        "id": f"chatcmpl-sim{state.next_id():08x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": choices,
        "usage": usage,
    }


def cached_tokens(state: SimState, body: dict, messages: list[dict]) -> int:
    """The longest prefix of the prompt (at 1,024 tokens and every 128 after) that an earlier
    request had, with the same tools or response format; remembers this prompt's prefixes."""
    text = "".join(_message_text(m) for m in messages)
    digest = hashlib.sha256(
        json.dumps([body.get("tools"), body.get("response_format")], sort_keys=True).encode()
    )
    cached, start = 0, 0
    with state.lock:
        for tokens in range(CACHE_MIN_TOKENS, len(text) // 4 + 1, CACHE_STEP_TOKENS):
            digest.update(text[start : tokens * 4].encode())
            start = tokens * 4
            key = digest.copy().digest()
            if key in state.prompt_cache:
                cached = tokens
            else:
                state.prompt_cache.add(key)
    return cached


async def _latency(config: SimConfig, rng: random.Random) -> None:
    delay = config.latency_ms
    if config.latency_jitter_ms:
        delay += rng.uniform(0, config.latency_jitter_ms)
    if delay > 0:
        await asyncio.sleep(delay / 1000)


def _bad_request(message: str) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return web.json_response({"error": error}, status=400)


async def _answer(state: SimState, body: dict, fault: str | None) -> web.Response:
    config = state.config
    if fault == "429":
        state.count("429")
        return rate_limited(config.retry_after_ms)
    await _latency(config, state.rng)
    if fault == "500":
        state.count("500")
        return server_error()
    if fault == "timeout":
        state.count("timeout")
        await asyncio.sleep(config.hang_seconds)
    try:
        completion = build_completion(state, body, fault)
    except (ValueError, KeyError) as error:
        state.count("bad_request")
        return _bad_request(f"cannot answer this request: {error!r}")
    state.count(fault or "ok")
    return web.json_response(completion)


async def messages_body(request: web.Request) -> dict | web.Response:
    """The request's JSON body, which must hold a 'messages' list, or the 400 to answer instead."""
    try:
        body = await request.json()
    except ValueError:
        return _bad_request("request body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return _bad_request("'messages' is required")
    return body


async def chat_completions(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    body = await messages_body(request)
    if isinstance(body, web.Response):
        return body
    if body.get("stream"):
        return _bad_request("streaming is not supported by the simulated annotator")
    state.record(body)
    if state.limit is not None and not state.limit.take():
        state.count("429")
        return state.limit.refused()
    fault = state.faults.next_fault()
    slots = state.slots or contextlib.nullcontext()
    async with slots:
        response = await _answer(state, body, fault)
    if state.limit is not None:
        response.headers.update(state.limit.headers())
    return response


async def embeddings(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return _bad_request("request body is not JSON")
    state.count("embeddings")
    return embeddings_response(body, state.config.embedding_models)


async def list_models(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "simserver"}
        for name in state.config.models
    ]
    return web.json_response({"object": "list", "data": data})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(state: SimState) -> web.Application:
    from labelagent.simserver import anthropic  # it builds on this module
    from labelagent.simserver.batches import add_routes  # it builds on this module's handlers

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app[STATE] = state
    add_routes(app)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/messages", anthropic.messages)
    app.router.add_get("/health", health)
    return app
