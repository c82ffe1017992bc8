"""OpenAI and OpenAI-compatible servers through the openai SDK's async client.

The SDK's own retries are off (one tenacity policy in agent/llm.py); it sends through aiohttp
(agent/transports/aiohttp_http.py). The response is read as
JSON from the raw HTTP response, with its headers, instead of being built into the SDK's pydantic
objects: only the answers and the token counts are needed.
"""

import os
from typing import Any

import httpx
import openai

from labelagent.errors import ConfigError
from labelagent.transports import (
    OPENAI_COMPATIBLE,
    Reply,
    cached_prompt_tokens,
    provider_of,
    raw_answer,
)
from labelagent.transports.aiohttp_http import AiohttpTransport
from labelagent.transports.batches import OPENAI_BATCH_PROVIDERS, OpenAIBatches

# What `chat.completions.create` takes as keyword arguments; anything else goes in extra_body.
CREATE_PARAMS = frozenset(
    {"model", "messages", "n", "seed", "temperature", "tools", "tool_choice", "response_format"}
    | {"max_tokens", "max_completion_tokens", "top_p", "stop"}
)
NO_KEY = "none"  # a local server (llama.cpp, vLLM, Ollama) wants some key but checks none


class OpenAITransport:
    def __init__(
        self, model: str, api_base: str | None, api_key: str | None, timeout: float
    ) -> None:
        provider = provider_of(model)
        self.provider = provider
        default_base, key_variables = OPENAI_COMPATIBLE[provider]
        key = api_key or next((os.environ[v] for v in key_variables if os.environ.get(v)), None)
        if key is None and api_base is None:
            raise ConfigError(
                f"{model} needs an API key: set {key_variables[0]}",
                hint="Or point --api-base at a server of your own that needs none.",
            )
        self.model = model.split("/", 1)[1] if "/" in model else model
        self._client = openai.AsyncOpenAI(
            api_key=key or NO_KEY,
            base_url=api_base or default_base,
            timeout=timeout,
            max_retries=0,
            http_client=httpx.AsyncClient(transport=AiohttpTransport(), timeout=timeout),
        )
        self._create = self._client.chat.completions.with_raw_response.create

    async def send(self, body: dict[str, Any]) -> Reply:
        known = {k: v for k, v in body.items() if k in CREATE_PARAMS}
        extra = {k: v for k, v in body.items() if k not in CREATE_PARAMS}
        known["model"] = self.model
        if extra:
            known["extra_body"] = extra
        response = await self._create(**known)
        data = response.http_response.json()
        usage = data.get("usage") or {}
        return Reply(
            answers=[raw_answer(c.get("message")) for c in data.get("choices") or []],
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            cached_prompt_tokens=cached_prompt_tokens(usage),
            headers=response.headers,
        )

    def batches(self) -> OpenAIBatches | None:
        """The provider's Files and Batches endpoints, where it has them."""
        return OpenAIBatches(self._client) if self.provider in OPENAI_BATCH_PROVIDERS else None

    def wire_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as one line of a batch file sends it."""
        return {**body, "model": self.model}

    async def aclose(self) -> None:
        await self._client.close()
