"""How fast one backend sends: requests in flight (adaptive) and requests and tokens per minute.

In flight: a window that starts at `START` requests and grows like TCP's: by one per answer
(slow start) until the first sign of congestion, then by one per window of answers, and only
while latency holds (its moving average stays under twice the best seen: a server that queues
answers more slowly). A 429 halves the window, once for all the requests sent before the last
cut (one round trip), and the request is retried after the server's Retry-After. The window
never exceeds `ceiling` (--concurrency).

Per minute: requests are spaced evenly so that they stay under `--rpm` and `--tpm`, or, when
those are not given, under `SHARE` of the limits the provider states in its rate-limit headers
(`x-ratelimit-limit-requests` / `-tokens`, Anthropic's `anthropic-ratelimit-*-limit`). A provider
that reports no request left makes the next request wait for its reset.
"""

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping

import openai

START = 16
SHARE = 0.95  # of a limit learnt from headers: clocks and counting windows differ a little
LATENCY_GROWTH = 2.0  # an average latency this many times the best seen stops the window growing
SMOOTHING = 0.1
LIMIT_HEADERS = {
    "requests": ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"),
    "tokens": ("x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit"),
}
REMAINING_HEADER = "x-ratelimit-remaining-requests"
RESET_HEADER = "x-ratelimit-reset-requests"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Flow:
    def __init__(self, ceiling: int, rpm: float | None = None, tpm: float | None = None) -> None:
        self.ceiling = max(1, ceiling)
        self.window = float(min(self.ceiling, START))
        self.rpm, self.tpm = rpm, tpm  # given ones are kept; otherwise learnt from headers
        self._unknown = [kind for kind, v in (("requests", rpm), ("tokens", tpm)) if v is None]
        self._listening = True
        self.in_flight = 0
        self.cuts = 0  # times a 429 halved the window
        self._slow_start = True
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._next_send = 0.0
        self._latency: float | None = None
        self._best_latency = float("inf")
        self._last_cut = float("-inf")

    @property
    def counts_tokens(self) -> bool:
        return self.tpm is not None

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[None]:
        """Hold one of the window's places, wait for the pace, and learn from the outcome."""
        await self._enter()
        started = time.monotonic()
        try:
            await self._pace(tokens)
            started = time.monotonic()
            yield
        except openai.RateLimitError:
            self._cut(started)
            raise
        else:
            self._grow(time.monotonic() - started)
        finally:
            self._leave()

    def learn(self, headers: Mapping[str, str]) -> None:
        """Take the provider's stated limits (per minute) from an answer's headers. A server
        whose first answer states none is not asked again."""
        if not self._listening or not headers:
            return
        if self._unknown:
            for kind in list(self._unknown):
                limit = next(
                    (_number(headers.get(name)) for name in LIMIT_HEADERS[kind] if name in headers),
                    None,
                )
                if limit:
                    setattr(self, "rpm" if kind == "requests" else "tpm", limit * SHARE)
                    self._unknown.remove(kind)
            if len(self._unknown) == 2 and REMAINING_HEADER not in headers:
                self._listening = False
                return
        if _number(headers.get(REMAINING_HEADER)) == 0:
            reset = _duration(headers.get(RESET_HEADER))
            if reset:
                self._next_send = max(self._next_send, time.monotonic() + reset)

    async def _enter(self) -> None:
        if not self._waiters and self.in_flight < int(self.window):
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the place is counted in in_flight by whoever woke this waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                self._waiters.remove(waiter)
            else:
                self._leave()
            raise

    def _leave(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiters and self.in_flight < int(self.window):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    async def _pace(self, tokens: int) -> None:
        spacing = 0.0
        if self.rpm:
            spacing = 60.0 / self.rpm
        if self.tpm and tokens:
            spacing = max(spacing, 60.0 * tokens / self.tpm)
        now = time.monotonic()
        send_at = max(now, self._next_send)
        self._next_send = send_at + spacing
        if send_at > now:
            await asyncio.sleep(send_at - now)

    def _grow(self, latency: float) -> None:
        average = (
            latency
            if self._latency is None
            else self._latency + SMOOTHING * (latency - self._latency)
        )
        self._latency = average
        self._best_latency = min(self._best_latency, average)
        if average > LATENCY_GROWTH * self._best_latency:
            self._slow_start = False
            return
        if self.window < self.ceiling:
            step = 1.0 if self._slow_start else 1.0 / self.window
            self.window = min(float(self.ceiling), self.window + step)
            self._hand_over()

    def _cut(self, sent: float) -> None:
        self._slow_start = False
        if sent <= self._last_cut:
            return  # sent before the last cut: one round trip's 429s are one signal
        self._last_cut = time.monotonic()
        self.window = max(1.0, self.window / 2)
        self.cuts += 1


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _duration(value: str | None) -> float | None:
    """OpenAI's reset durations: `1s`, `6m0s`, `20ms`; a bare number is seconds."""
    if not value:
        return None
    number = _number(value)
    if number is not None:
        return number
    parts = _DURATION_PART.findall(value)
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in parts) if parts else None
