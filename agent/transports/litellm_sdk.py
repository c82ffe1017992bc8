"""Providers with their own protocols (Anthropic, Gemini, Vertex, Bedrock, Cohere, ...) through
litellm, imported only when such a model is used (its import takes seconds). litellm's own
retries are off (`num_retries=0`); its exceptions are openai's types, so one retry policy
covers both transports."""

import logging
from typing import Any

from agent.transports import Reply, raw_answer

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
        self._fixed: dict[str, Any] = {"timeout": timeout, "num_retries": 0}
        if api_base:
            self._fixed["api_base"] = api_base
        if api_key:
            self._fixed["api_key"] = api_key

    async def send(self, body: dict[str, Any]) -> Reply:
        response = await self._acompletion(**body, **self._fixed)
        usage = getattr(response, "usage", None)
        hidden = getattr(response, "_hidden_params", None) or {}
        headers = {
            str(k).lower().removeprefix(HEADER_PREFIX): str(v)
            for k, v in (hidden.get("additional_headers") or {}).items()
        }
        return Reply(
            answers=[raw_answer(_message(c)) for c in getattr(response, "choices", None) or []],
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            headers=headers,
        )

    async def aclose(self) -> None:
        """litellm keeps its clients for the process."""


def _message(choice: Any) -> dict[str, Any] | None:
    message = getattr(choice, "message", None)
    if message is None:
        return None
    tool_calls = getattr(message, "tool_calls", None) or []
    return {
        "content": getattr(message, "content", None),
        "tool_calls": [{"function": {"arguments": t.function.arguments}} for t in tool_calls],
    }
