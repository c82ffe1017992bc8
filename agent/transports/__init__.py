"""How a request body reaches a remote model, and what comes back.

Two transports send the same body (built once in agent/llm.py): the openai SDK's async client
for OpenAI and every OpenAI-compatible server, litellm for providers with their own protocols
(Anthropic, Gemini, Vertex, Bedrock, Cohere, ...). Both return a `Reply`: the raw answer of each
choice, the token counts and the rate-limit headers, so parsing, cost and retries are one code
path above them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from labelagent.errors import ConfigError
from labelagent.transports.batches import BatchClient

TRANSPORTS = ("auto", "openai", "litellm")
# Providers that speak OpenAI's chat completions protocol: their base URL (None: the SDK's own,
# or OPENAI_BASE_URL) and the environment variables that hold their key, as litellm reads them.
OPENAI_COMPATIBLE: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "openai": (None, ("OPENAI_API_KEY",)),
    "groq": ("https://api.groq.com/openai/v1", ("GROQ_API_KEY",)),
    "deepseek": ("https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
    "openrouter": ("https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
    "together_ai": (
        "https://api.together.xyz/v1",
        ("TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY"),
    ),
    "hosted_vllm": (None, ("HOSTED_VLLM_API_KEY",)),
}


@dataclass
class Reply:
    """One completion: per choice the raw answer (tool call arguments, else the content)."""

    answers: list[str | None]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens, written to it (Anthropic's cache writes)
    headers: Mapping[str, str] = field(default_factory=dict)


class Transport(Protocol):
    async def send(self, body: dict[str, Any]) -> Reply:
        """Send one chat completion request; raise openai's exception types on failure."""
        ...

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        ...

    def batches(self) -> BatchClient | None:
        """The provider's batch interface (agent/transports/batches.py), None without one."""
        ...

    def wire_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as a line of a batch input file."""
        ...


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def transport_for(model: str, choice: str = "auto") -> str:
    """`openai` for OpenAI-compatible providers, `litellm` for the rest; `choice` overrides."""
    if choice not in TRANSPORTS:
        raise ConfigError(f"--transport {choice!r} is unknown; use one of {', '.join(TRANSPORTS)}")
    if choice != "auto":
        if choice == "openai" and provider_of(model) not in OPENAI_COMPATIBLE:
            raise ConfigError(
                f"--transport openai cannot reach {model}: its provider has its own protocol",
                hint="Leave out --transport, or use --model openai/NAME with --api-base.",
            )
        return choice
    return "openai" if provider_of(model) in OPENAI_COMPATIBLE else "litellm"


def make_transport(
    model: str, api_base: str | None, api_key: str | None, timeout: float, choice: str = "auto"
) -> Transport:
    if transport_for(model, choice) == "openai":
        from labelagent.transports.openai_sdk import OpenAITransport

        return OpenAITransport(model, api_base, api_key, timeout)
    from labelagent.transports.litellm_sdk import LiteLLMTransport

    return LiteLLMTransport(model, api_base, api_key, timeout)


def cached_prompt_tokens(usage: Any) -> int:
    """The prompt tokens the provider read from its prompt cache
    (`usage.prompt_tokens_details.cached_tokens`, a dict or an object), 0 where it does not
    say."""
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    if details is None and not isinstance(usage, dict):
        details = getattr(usage, "prompt_tokens_details", None)
    if isinstance(details, dict):
        return int(details.get("cached_tokens") or 0)
    return int(getattr(details, "cached_tokens", 0) or 0)


def raw_answer(message: Mapping[str, Any] | None) -> str | None:
    """The first tool call's arguments, else the message content."""
    if not message:
        return None
    tool_calls = message.get("tool_calls")
    if tool_calls:
        return (tool_calls[0].get("function") or {}).get("arguments")
    content = message.get("content")
    return content if isinstance(content, str) else None
