"""The one place that calls remote models, async.

One request builder (the structured-output part is prepared once per guideline), one
retry policy (tenacity; the SDKs' own retries are off), one parser and one accounting of tokens,
cost (litellm's local price table) and latency, over two transports (agent/transports): the
openai SDK for OpenAI-compatible servers and litellm for the other providers. An answer that does
not validate is re-asked. Every sample comes back as a `Sample`, failed or not.
"""

import asyncio
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import openai
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from labelagent import prices
from labelagent.consistency import RoundCosts
from labelagent.errors import ConfigError, ModelError, ParseError, ProviderUnreachable
from labelagent.prompts import render
from labelagent.records import Sample, SampleRequest
from labelagent.tasks import answer_model, parse_answer, system_prompt, task_for
from labelagent.transports import (
    Reply,
    cached_prompt_tokens,
    make_transport,
    provider_of,
    raw_answer,
)
from labelagent.transports.batches import BatchClient
from labelagent.transports.flow import Flow
from labelagent.transports.openai_sdk import NO_KEY

MODES = ("auto", "tools", "json_schema", "json")
CACHE_MARKING_PROVIDERS = ("anthropic",)  # cache only the prefix a request marks
EPHEMERAL = {"type": "ephemeral"}
T = TypeVar("T")
FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


@dataclass
class Paid:
    """What a backend's answered requests cost so far, prompt and completion apart."""

    replies: int = 0
    choices: int = 0
    prompt_usd: float = 0.0
    completion_usd: float = 0.0


class NotAfforded(Exception):
    """The budget cannot cover this request's worst case: it is not sent."""


def is_transient(error: BaseException) -> bool:
    """429, 5xx, timeouts and dropped connections are worth another try; the rest are not."""
    if isinstance(
        error, openai.APITimeoutError | openai.APIConnectionError | openai.RateLimitError
    ):
        return True
    return isinstance(error, openai.APIStatusError) and error.status_code >= 500


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's own wait, from `retry-after-ms` or `Retry-After` (seconds)."""
    for headers in (
        getattr(error, "headers", None),
        getattr(getattr(error, "response", None), "headers", None),
    ):
        if not headers:
            continue
        lowered = {str(k).lower(): v for k, v in dict(headers).items()}
        try:
            if "retry-after-ms" in lowered:
                return float(lowered["retry-after-ms"]) / 1000
            if "retry-after" in lowered:
                return float(lowered["retry-after"])
        except (TypeError, ValueError):
            continue
    return None


class RetryPolicy:
    """Exponential backoff with full jitter, overridden by the server's Retry-After."""

    def __init__(self, attempts: int = 6, base: float = 0.5, cap: float = 30.0) -> None:
        self.attempts, self.base, self.cap = attempts, base, cap

    def wait_after(self, error: BaseException | None, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        told = retry_after_seconds(error) if error else None
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        return min(self.cap, told) if told is not None else backoff

    def retrying(self, done: int = 0) -> AsyncRetrying:
        """Tenacity's loop over the attempts left after `done` failed ones."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts - done),
            wait=lambda state: self.wait_after(
                state.outcome.exception(), state.attempt_number + done
            ),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )


def choose_mode(model: str, mode: str) -> str:
    """Tool calling where the provider supports it, JSON schema otherwise, plain JSON as a last
    resort (what OpenAI-compatible servers such as llama.cpp and Ollama accept)."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if prices.supports(model, "function_calling"):
        return "tools"
    if prices.supports(model, "response_schema"):
        return "json_schema"
    return "json"


def structured_output(
    model: type[BaseModel], mode: str, system: dict[str, str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The system message and the request's structured-output part for an answer model, as
    instructor 1.17 built them for OpenAI-compatible APIs: a forced tool call whose parameters
    are the schema (instructor's public `generate_openai_schema`), a `json_schema` response format,
    or JSON mode with the schema appended to the system message."""
    if mode == "tools":
        from instructor import generate_openai_schema

        function = generate_openai_schema(model)
        choice = {"type": "function", "function": {"name": function["name"]}}
        return system, {
            "tools": [{"type": "function", "function": function}],
            "tool_choice": choice,
        }
    schema = model.model_json_schema()
    if mode == "json_schema":
        named = {"name": model.__name__, "schema": schema}
        return system, {"response_format": {"type": "json_schema", "json_schema": named}}
    schema_text = json.dumps(schema, indent=2, ensure_ascii=False)
    # instructor's layout, byte for byte: its dedent left the instruction's indentation in place
    instruction = f"\n            {render('json_schema.j2', schema=schema_text)}\n"
    content = f"{system['content']}\n\n{instruction}"
    return {**system, "content": content}, {"response_format": {"type": "json_object"}}


class RemoteBackend:
    """Any litellm model string: openai/..., anthropic/..., gemini/..., ollama/..., or any
    OpenAI-compatible server through `api_base`.

    `structured_output` turns the guideline's answer model into the request's structured-output part
    (tools, a JSON schema, or a schema in the system prompt) once per guideline; each request is
    then one call of the transport (`transport`: auto picks the openai SDK for OpenAI-compatible
    providers, litellm for the rest), paced by a `Flow`, and every returned choice is parsed by
    the task's own `parse_answer`. An answer that does not validate is re-asked (`max_reasks`)
    with the error.
    """

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        api_key: str | None = None,
        mode: str = "auto",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_reasks: int = 1,
        retry: RetryPolicy | None = None,
        transport: str = "auto",
        rpm: float | None = None,
        tpm: float | None = None,
    ) -> None:
        self.name = model
        self.mode = choose_mode(model, mode)
        self.max_reasks = max_reasks
        self.retry = retry or RetryPolicy()
        self.flow = Flow(concurrency, rpm, tpm)
        self.transport = make_transport(model, api_base, api_key, timeout, transport)
        self.marks_cache = provider_of(model) in CACHE_MARKING_PROVIDERS
        self._n_ok: bool | None = None  # learnt from the first answer asked for several choices
        self._prepared: dict[str, tuple[str, dict[str, Any]]] = {}
        self._structured_bytes: dict[str, int] = {}
        self.endpoint = api_base or f"the {model.split('/', 1)[0]} API"
        self.requests = 0  # HTTP requests sent, retries included
        self._paid = Paid()

    @property
    def supports_n(self) -> bool:
        return self._n_ok is not False

    @property
    def priced(self) -> bool:
        return prices.price(self.name, 1, 1) is not None

    def round_costs(self) -> RoundCosts | None:
        """The mean prompt and per-sample completion dollars of the answers so far, for
        `round_size`; None before the first answer or for a model without a price."""
        paid = self._paid
        if not paid.replies or not self.priced:
            return None
        prompt, sample = paid.prompt_usd / paid.replies, paid.completion_usd / paid.choices
        return RoundCosts(prompt, sample, self.supports_n)

    async def aclose(self) -> None:
        """Close the transport's connections (at the end of a run's event loop)."""
        await self.transport.aclose()

    async def sample(self, request: SampleRequest) -> list[Sample]:
        if request.n == 1:
            return await self._draw(request, 1)
        if request.n > 1 and self.supports_n:
            samples = await self._draw(request, request.n)
            if len(samples) < request.n:
                self._n_ok = False
                more = [
                    self._draw(request.model_copy(update={"seed": request.seed + i}), 1)
                    for i in range(len(samples), request.n)
                ]
                for extra in await asyncio.gather(*more):
                    samples.extend(extra)
            elif samples and samples[0].ok:
                self._n_ok = True
            return samples
        draws = [
            self._draw(request.model_copy(update={"seed": request.seed + i}), 1)
            for i in range(request.n)
        ]
        return [s for batch in await asyncio.gather(*draws) for s in batch]

    def batches(self) -> BatchClient | None:
        """The provider's batch interface (`label --batch`), None where it has none."""
        return self.transport.batches()

    def batch_line(self, request: SampleRequest) -> dict[str, Any]:
        """The request's body as a line of a batch input file sends it."""
        return self.transport.wire_body(self._request(request, request.n))

    async def batch_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One call of the batch interface (upload, create, poll, download), with the retry
        policy of every request. What still fails stops the run: batches already created are
        logged, so the next run polls them."""
        try:
            async for attempt in self.retry.retrying():
                with attempt:
                    return await call()
        except Exception as e:
            why = f"{self.name} at {self.endpoint}, batch interface: {_describe(e)}"
            if is_transient(e):
                raise ProviderUnreachable(why) from None
            raise ModelError(why) from None
        raise AssertionError("unreachable: tenacity reraises")

    def batch_samples(self, request: SampleRequest, line: dict[str, Any]) -> list[Sample]:
        """The samples of one answered line of a batch's output or error file, priced at the
        batch price. 429 and 5xx leave them unanswered (the item waits, as online); another
        error status fails them; an invalid answer is a failed sample (no re-ask in a batch)."""
        started = time.perf_counter()
        response = line.get("response") or {}
        status, body = response.get("status_code"), response.get("body") or {}
        if status != 200:
            error = (body.get("error") or {}) if isinstance(body, dict) else {}
            why = f"HTTP {status}: {_short(Exception(error.get('message') or body))}"
            if status == 429 or (status or 0) >= 500:
                why = f"{self.name} at {self.endpoint} (batch line): {why}"
                return [self._unanswered("provider", why, started) for _ in range(request.n)]
            return [self._failed(why, started) for _ in range(request.n)]
        usage = body.get("usage") or {}
        reply = Reply(
            answers=[raw_answer(c.get("message")) for c in body.get("choices") or []],
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            cached_prompt_tokens=cached_prompt_tokens(usage),
        )
        samples = self._samples(request, reply, request.n, started)
        cost = prices.batch_price(
            self.name, reply.prompt_tokens, reply.completion_tokens, reply.cached_prompt_tokens
        )
        for sample in samples:
            sample.cost_usd = (cost or 0.0) / max(1, len(samples))
        return samples

    def _request(self, request: SampleRequest, n: int) -> dict[str, Any]:
        """The request body. The structured-output part, and the fixed prefix of the system
        message (`system_prompt`; the schema is added to it in JSON mode), are prepared once per
        guideline; what follows the prefix (the item's examples) is the request's own."""
        key = request.guideline.content_hash
        fixed = system_prompt(request.guideline)
        if key not in self._prepared:
            model = answer_model(request.guideline)
            fixed_system = {"role": "system", "content": fixed}
            system, structured = structured_output(model, self.mode, fixed_system)
            self._prepared[key] = (system["content"], structured)
            self._structured_bytes[key] = len(json.dumps(structured, default=str).encode())
        prefix, structured = self._prepared[key]
        own = request.messages[0]["content"].removeprefix(fixed)
        body = {
            "model": self.name,
            **structured,
            "messages": [self._system(prefix, own), *request.messages[1:]],
            "temperature": request.temperature,
            "seed": request.seed,
            "max_tokens": max_tokens(request),
        }
        if n > 1:
            body["n"] = n
        return body

    def _system(self, prefix: str, own: str) -> dict[str, Any]:
        """The system message: for Anthropic, the fixed prefix is a content block of its own
        marked for the prompt cache (litellm passes `cache_control` on; other providers cache
        a repeated prefix by themselves)."""
        if not self.marks_cache:
            return {"role": "system", "content": prefix + own}
        blocks: list[dict[str, Any]] = [
            {"type": "text", "text": prefix, "cache_control": EPHEMERAL}
        ]
        if own:
            blocks.append({"type": "text", "text": own})
        return {"role": "system", "content": blocks}

    async def _draw(self, request: SampleRequest, n: int) -> list[Sample]:
        started = time.perf_counter()
        try:
            reply = await self._complete(self._request(request, n), request)
        except FATAL as e:
            raise ModelError(f"{self.name}: {type(e).__name__}: {_short(e)}") from None
        except NotAfforded:
            why = "not sent: the budget cannot cover this request's worst case"
            return [self._unanswered("budget", why, started) for _ in range(n)]
        except Exception as e:
            if is_transient(e):
                why = f"{self.name} at {self.endpoint}: {_describe(e)}"
                return [self._unanswered("provider", why, started) for _ in range(n)]
            return [self._failed(_describe(e), started) for _ in range(n)]
        self._learn_costs(reply)
        samples = self._samples(request, reply, n, started)
        for index, sample in enumerate(samples):
            if not sample.ok and sample.error.startswith("invalid answer"):
                samples[index] = await self._reask(request, reply.answers[index], sample)
        return samples

    async def _complete(self, body: dict[str, Any], request: SampleRequest) -> Reply:
        """Send with retries. Under a budget, the request's worst case is reserved first and
        settled to its real cost afterwards (0 when no answer came back)."""
        budget = request.budget
        tokens = self._worst_tokens(body, request) if self.flow.counts_tokens else 0
        if budget is None:
            return await self._send(body, tokens)
        worst = self._worst_case(body, request)
        if not await budget.reserve(worst):
            raise NotAfforded
        reply = None
        try:
            reply = await self._send(body, tokens)
        finally:
            budget.settle(worst, 0.0 if reply is None else self._cost(reply))
        return reply

    def _worst_tokens(self, body: dict[str, Any], request: SampleRequest) -> int:
        """Tokens if the prompt were one token per UTF-8 byte (a bound for byte-level BPE
        tokenizers; 4 per message and 16 more for the chat format) and every choice used all of
        max_tokens."""
        prompt = sum(len(str(m.get("content") or "").encode()) + 4 for m in body["messages"])
        prompt += self._structured_bytes.get(request.guideline.content_hash, 0) + 16
        return prompt + body["max_tokens"] * body.get("n", 1)

    def _worst_case(self, body: dict[str, Any], request: SampleRequest) -> float:
        """Dollars for `_worst_tokens`: the prompt's bound at the prompt price, max_tokens per
        choice at the completion price."""
        completion = body["max_tokens"] * body.get("n", 1)
        prompt = self._worst_tokens(body, request) - completion
        price = prices.price(self.name, prompt, completion)
        return float("inf") if price is None else price

    async def _send(self, body: dict[str, Any], tokens: int) -> Reply:
        """Send under the retry policy. The first attempt goes without tenacity, whose per-call
        machinery (~0.1 ms of CPU a request) only a failed attempt needs."""
        try:
            return await self._attempt(body, tokens)
        except Exception as e:
            if not is_transient(e) or self.retry.attempts < 2:
                raise
            await asyncio.sleep(self.retry.wait_after(e, 1))
        async for attempt in self.retry.retrying(done=1):
            with attempt:
                return await self._attempt(body, tokens)
        raise AssertionError("unreachable: tenacity reraises")

    async def _attempt(self, body: dict[str, Any], tokens: int) -> Reply:
        async with self.flow.slot(tokens):
            self.requests += 1
            reply = await self.transport.send(body)
        self.flow.learn(reply.headers)
        return reply

    async def _reask(self, request: SampleRequest, answer: str | None, failed: Sample) -> Sample:
        """Show the model its invalid answer and the error, and ask again (bounded)."""
        messages = list(request.messages)
        for _ in range(self.max_reasks):
            messages = [
                *messages,
                {"role": "assistant", "content": answer or ""},
                {
                    "role": "user",
                    "content": f"That answer is not valid: {failed.error}. Answer again, "
                    "following the required format exactly.",
                },
            ]
            retry = request.model_copy(update={"messages": messages})
            started = time.perf_counter()
            try:
                reply = await self._complete(self._request(retry, 1), request)
            except Exception as e:
                why = "not sent (budget)" if isinstance(e, NotAfforded) else _describe(e)
                failed.error = f"{failed.error}; re-ask failed: {why}"
                return failed
            again = self._samples(request, reply, 1, started)[0]
            again.prompt_tokens += failed.prompt_tokens
            again.cached_prompt_tokens += failed.cached_prompt_tokens
            again.cost_usd += failed.cost_usd
            if again.ok:
                return again
            failed, answer = again, (reply.answers or [None])[0]
        return failed

    def _samples(
        self, request: SampleRequest, reply: Reply, n: int, started: float
    ) -> list[Sample]:
        answers = reply.answers[:n]
        share = 1 / max(1, len(answers))
        cost = self._cost(reply)
        latency = (time.perf_counter() - started) * 1000
        samples = []
        for index, raw in enumerate(answers):
            answer, error = _parse_choice(request, raw)
            samples.append(
                Sample(
                    model=self.name,
                    label=answer.label if answer else None,
                    confidence=answer.confidence if answer else None,
                    rationale=answer.rationale if answer else None,
                    prompt_tokens=reply.prompt_tokens if index == 0 else 0,
                    cached_prompt_tokens=reply.cached_prompt_tokens if index == 0 else 0,
                    completion_tokens=round(reply.completion_tokens * share),
                    cost_usd=cost * share,
                    latency_ms=latency,
                    error=error,
                )
            )
        return samples

    def _learn_costs(self, reply: Reply) -> None:
        if not reply.answers:
            return
        paid = self._paid
        paid.replies += 1
        paid.choices += len(reply.answers)
        paid.prompt_usd += self._cost(replace(reply, completion_tokens=0))
        paid.completion_usd += self._cost(
            replace(reply, prompt_tokens=0, cached_prompt_tokens=0, cache_write_tokens=0)
        )

    def _cost(self, reply: Reply) -> float:
        """From litellm's price table; 0 for models it does not know (local servers)."""
        return (
            prices.price(
                self.name,
                reply.prompt_tokens,
                reply.completion_tokens,
                reply.cached_prompt_tokens,
                reply.cache_write_tokens,
            )
            or 0.0
        )

    def _failed(self, error: str, started: float) -> Sample:
        return Sample(
            model=self.name, error=error, latency_ms=(time.perf_counter() - started) * 1000
        )

    def _unanswered(self, why: str, error: str, started: float) -> Sample:
        sample = self._failed(error, started)
        sample.unanswered = why
        return sample


def max_tokens(request: SampleRequest) -> int:
    """The longest answer the task needs: every request sets it, so a budget can reserve a
    request's worst case."""
    return task_for(request.guideline).max_tokens(request.item)


def _parse_choice(request: SampleRequest, raw: str | None) -> tuple[Any, str | None]:
    if not raw:
        return None, "invalid answer: empty"
    try:
        return parse_answer(request.guideline, request.item, raw), None
    except ParseError as e:
        return None, f"invalid answer: {e}"


def _describe(error: BaseException) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {_short(error)}"
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    return f"{type(error).__name__}: {_short(error)}"


# A credential in an error text: a bearer token, the value of a header or field that carries
# one, and strings shaped like providers' keys (OpenAI and Anthropic sk-..., Google AIza...).
_BEARER = re.compile(r"(?i)(\bbearer\s+)(?!\[redacted\])[^\s\"',}]+")
_CREDENTIAL = re.compile(
    r"(?i)(\b(?:authorization|x-api-key|x-goog-api-key|api[-_]?key|access[-_]?token|secret)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"(?!\[redacted\]|(?:bearer|basic|token)\s)[^\s\"',}]+"
)
_KEY_SHAPED = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,})")
_SECRET_VARIABLE = re.compile(r"(?:KEY|TOKEN|SECRET)$")
REDACTED = "[redacted]"


def _short(error: BaseException, limit: int = 300) -> str:
    """The error's text on one line, cut to `limit`, with every credential in it redacted: the
    values of the environment's *KEY / *TOKEN / *SECRET variables (where litellm finds the
    configured api key), authorization headers and key-shaped strings. It is stored in
    drafts.error and printed, and servers echo requests back in their error bodies."""
    text = " ".join(str(error).split())
    for name, value in os.environ.items():
        if _SECRET_VARIABLE.search(name.upper()) and len(value) >= 8:
            text = text.replace(value, REDACTED)
    text = _KEY_SHAPED.sub(REDACTED, text)
    for pattern in (_BEARER, _CREDENTIAL):
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def embed(
    model: str,
    texts: list[str],
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    batch: int = 256,
) -> list[list[float]]:
    """The embedding of each text, in order, through litellm.aembedding (`batch` texts a
    request, transient errors retried). ModelError, naming the model and where it was asked,
    when it is unknown, refused or unreachable."""
    import litellm

    litellm.suppress_debug_info = True
    options: dict[str, Any] = {"timeout": timeout, "num_retries": 0}
    if api_base:
        options["api_base"] = api_base
    if api_key:
        options["api_key"] = api_key
    elif api_base and model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
        options["api_key"] = NO_KEY  # a server of one's own that checks no key
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch):
        try:
            async for attempt in RetryPolicy(attempts=3, cap=5.0).retrying():
                with attempt:
                    response = await litellm.aembedding(
                        model=model, input=texts[start : start + batch], **options
                    )
        except Exception as e:
            where = api_base or f"the {model.split('/', 1)[0]} API"
            raise ModelError(
                f"embedding model {model} at {where}: {_describe(e)}",
                hint="Check the --embedding-model name (litellm's provider/model form) and "
                "--embedding-api-base, or leave out --embedding-model to rank by TF-IDF.",
            ) from None
        rows = sorted(response.data, key=lambda row: row["index"])
        vectors.extend(list(row["embedding"]) for row in rows)
    return vectors
