"""Which requests fail, and how a failure looks on the wire."""

import random
from collections import deque

from aiohttp import web

from labelagent.simserver.config import SimConfig


class FaultPlan:
    """Draws the fault (or None) for each arriving request: scripted ones first, then random."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self.scripted: deque[str] = deque(config.fail_first)

    def next_fault(self) -> str | None:
        if self.scripted:
            return self.scripted.popleft()
        if self._config.fault_rate > 0 and self._rng.random() < self._config.fault_rate:
            return self._rng.choice(self._config.faults)
        return None


def _error_body(message: str, kind: str, code: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def rate_limited(retry_after_ms: int) -> web.Response:
    return web.json_response(
        _error_body("Rate limit reached (simulated).", "rate_limit_error", "rate_limit_exceeded"),
        status=429,
        headers={"Retry-After": "1", "retry-after-ms": str(retry_after_ms)},
    )


def server_error() -> web.Response:
    return web.json_response(
        _error_body("The server had an error (simulated).", "server_error", "internal_error"),
        status=500,
    )


def truncate(text: str) -> str:
    """Cut a serialized answer in half, as a model stopped mid-output would: never valid JSON."""
    return text[: max(1, len(text) // 2)]
