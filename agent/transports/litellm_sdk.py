"""Providers with their own protocols (Anthropic, Gemini, Vertex, Bedrock, Cohere, ...) through
litellm, imported only when such a model is used (its import takes seconds). litellm's own
retries are off (`num_retries=0`); its exceptions are openai's types, so one retry policy
covers both transports."""

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from labelagent.transports import Reply, cached_prompt_tokens, provider_of
from labelagent.transports.batches import LITELLM_BATCH_PROVIDERS, LiteLLMBatches

HEADER_PREFIX = "llm_provider-"  # how litellm passes the provider's response headers on


class LiteLLMTransport:
    def __init__(
        self, model: str, api_base: str | None, api_key: str | None, timeout: float
    ) -> None:
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
        self._acompletion = litellm.acompletion
        self.provider = provider_of(model)
        self.model = model.split("/", 1)[1] if "/" in model else model
        self._fixed: dict[str, Any] = {"timeout": timeout, "num_retries": 0}
        if api_base:
            self._fixed["api_base"] = api_base
        if api_key:
            self._fixed["api_key"] = api_key

    async def send(self, body: dict[str, Any]) -> Reply:
        response = await self._acompletion(**body, **self._fixed)
        usage = getattr(response, "usage", None)
        hidden = getattr(response, "_hidden_params", None) or {}
        return Reply(
            answers=[_raw_answer(c) for c in getattr(response, "choices", None) or []],
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            cached_prompt_tokens=cached_prompt_tokens(usage),
            cache_write_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
            headers=ProviderHeaders(hidden.get("additional_headers") or {}),
        )

    def batches(self) -> LiteLLMBatches | None:
        """litellm's batch functions, for the providers where it can create and list batches."""
        if self.provider not in LITELLM_BATCH_PROVIDERS:
            return None
        return LiteLLMBatches(
            self.provider, {k: v for k, v in self._fixed.items() if k != "num_retries"}
        )

    def wire_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as one line of a batch file sends it (the provider's own model name)."""
        return {**body, "model": self.model}

    async def aclose(self) -> None:
        """litellm keeps its clients for the process."""


class ProviderHeaders(Mapping[str, str]):
    """litellm's `additional_headers`, where the provider's own carry a prefix, read by the
    provider's names (only the few the rate limiter asks for are looked up)."""

    def __init__(self, headers: Mapping[str, Any]) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        for key in (HEADER_PREFIX + name, name):
            if key in self._headers:
                return str(self._headers[key])
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (str(key).removeprefix(HEADER_PREFIX) for key in self._headers)

    def __len__(self) -> int:
        return len(self._headers)


def _raw_answer(choice: Any) -> str | None:
    """The first tool call's arguments, else the message content."""
    message = getattr(choice, "message", None)
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        return tool_calls[0].function.arguments
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else None
