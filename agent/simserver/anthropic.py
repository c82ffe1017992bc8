"""Anthropic's Messages API (`POST /v1/messages`), as litellm sends it, answered by the same
simulated annotator: the request is read as a chat completion and the answer written back as a
message (one choice: the API has no `n`; no faults or rate limits on this endpoint).

Prompt caching is simulated as Anthropic documents it: the tools and the system blocks up to the
last one marked `cache_control` are a cache entry; the first request with that prefix writes it
(`cache_creation_input_tokens`), later ones read it (`cache_read_input_tokens`). Tokens are
counted as the chat endpoint counts them (4 characters each).
"""

import hashlib
import json
from typing import Any

from aiohttp import web

from labelagent.simserver.app import (
    STATE,
    SimState,
    _latency,
    build_completion,
    messages_body,
)


def as_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body the simulated annotator answers."""
    system = "".join(block.get("text", "") for block in system_blocks(body))
    messages = [{"role": "system", "content": system}] if system else []
    chat: dict[str, Any] = {"model": body.get("model", ""), "messages": messages + body["messages"]}
    tools = body.get("tools") or []
    if tools:
        chat["tools"] = [
            {
                "type": "function",
                "function": {"name": t.get("name", ""), "parameters": t.get("input_schema") or {}},
            }
            for t in tools
        ]
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    return chat


def system_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    system = body.get("system") or []
    return [{"type": "text", "text": system}] if isinstance(system, str) else list(system)


def cached_prefix(body: dict[str, Any]) -> str:
    """The tools and the system blocks up to the last marked `cache_control`, or ""."""
    blocks = system_blocks(body)
    marked = [i for i, block in enumerate(blocks) if block.get("cache_control")]
    if not marked:
        return ""
    tools = json.dumps(body.get("tools") or [], sort_keys=True)
    return tools + "".join(block.get("text", "") for block in blocks[: marked[-1] + 1])


def as_message(completion: dict[str, Any], read: int, written: int) -> dict[str, Any]:
    message = completion["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if calls:
        function = calls[0]["function"]
        content = [
            {
                "type": "tool_use",
                "id": f"toolu_{calls[0]['id']}",
                "name": function["name"],
                "input": json.loads(function["arguments"]),
            }
        ]
    else:
        content = [{"type": "text", "text": message.get("content") or ""}]
    usage = completion["usage"]
    return {
        "id": completion["id"].replace("chatcmpl", "msg"),
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": content,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": max(0, usage["prompt_tokens"] - read - written),
            "output_tokens": usage["completion_tokens"],
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        },
    }


def _cache(state: SimState, body: dict[str, Any]) -> tuple[int, int]:
    """Tokens read from and written to the prompt cache by this request."""
    prefix = cached_prefix(body)
    if not prefix:
        return 0, 0
    key = hashlib.sha256(prefix.encode()).digest()
    tokens = len(prefix) // 4
    with state.lock:
        if key in state.prompt_cache:
            return tokens, 0
        state.prompt_cache.add(key)
    return 0, tokens


async def messages(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    body = await messages_body(request)
    if isinstance(body, web.Response):
        return body
    state.record(body)
    await _latency(state.config, state.rng)
    read, written = _cache(state, body)
    completion = build_completion(state, as_chat(body), None)
    state.count("ok")
    return web.json_response(as_message(completion, read, written))
