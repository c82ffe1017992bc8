"""Prices and capabilities from litellm's local price table, read as a dictionary.

The table is the JSON file litellm ships (`model_prices_and_context_window_backup.json`), loaded
once without importing litellm (its import alone takes seconds): pricing a response is a lookup,
not a call. Names are looked up as litellm's own table spells them: OpenAI's and Anthropic's
bare (`gpt-4o-mini`), other providers' with their prefix (`groq/llama-3.1-8b-instant`).
"""

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

TABLE_FILE = "model_prices_and_context_window_backup.json"


@functools.cache
def _table() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / TABLE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@functools.cache
def model_info(model: str) -> dict[str, Any] | None:
    """The table's entry for a `provider/name` model string, or None."""
    table = _table()
    if model in table:
        return table[model]
    provider, _, name = model.partition("/")
    entry = table.get(name) if name else None
    if entry is not None and entry.get("litellm_provider") == provider:
        return entry
    return None


def price(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_prompt_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float | None:
    """Dollars for these tokens: of the prompt, the share read from the provider's cache at the
    table's cached rate (`cache_read_input_token_cost`) and the share written to it (Anthropic)
    at its write rate (`cache_creation_input_token_cost`), where the table has them; None for a
    model the table does not price."""
    info = model_info(model)
    if info is None or "input_cost_per_token" not in info:
        return None
    prompt = float(info.get("input_cost_per_token") or 0.0)
    cached = float(info.get("cache_read_input_token_cost") or prompt)
    written = float(info.get("cache_creation_input_token_cost") or prompt)
    completion = float(info.get("output_cost_per_token") or 0.0)
    fresh = prompt_tokens - cached_prompt_tokens - cache_write_tokens
    return (
        prompt * fresh
        + cached * cached_prompt_tokens
        + written * cache_write_tokens
        + completion * completion_tokens
    )


def batch_price(
    model: str, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0
) -> float | None:
    """Dollars for these tokens through the provider's batch interface: the table's
    `input_cost_per_token_batches` / `output_cost_per_token_batches`, else half the online
    price (`has_batch_price` tells which); the cached share at the cached rate where that is
    lower. None for a model the table does not price."""
    info = model_info(model)
    online = price(model, prompt_tokens, completion_tokens, cached_prompt_tokens)
    if online is None or info is None or not has_batch_price(model):
        return None if online is None else online / 2
    prompt = float(info["input_cost_per_token_batches"])
    cached = min(prompt, float(info.get("cache_read_input_token_cost") or prompt))
    completion = float(info.get("output_cost_per_token_batches") or 0.0)
    fresh = prompt_tokens - cached_prompt_tokens
    return prompt * fresh + cached * cached_prompt_tokens + completion * completion_tokens


def has_batch_price(model: str) -> bool:
    info = model_info(model)
    return bool(info and info.get("input_cost_per_token_batches") is not None)


def supports(model: str, capability: str) -> bool:
    """`function_calling` or `response_schema`, as the table says; False when unknown."""
    info = model_info(model)
    return bool(info and info.get(f"supports_{capability}"))
