"""A requests-per-minute limit as providers enforce it: a token bucket holding one second's worth
of requests, refilled continuously. Every answer states the limit in OpenAI's headers; a request
beyond it gets 429 with Retry-After."""

import math
import time

from aiohttp import web

from labelagent.simserver.faults import rate_limited


class RequestLimit:
    def __init__(self, rpm: int) -> None:
        self.rpm = rpm
        self.rate = rpm / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Count one request; False when it is beyond the limit."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def headers(self) -> dict[str, str]:
        refill = (self.capacity - self.tokens) / self.rate
        return {
            "x-ratelimit-limit-requests": str(self.rpm),
            "x-ratelimit-remaining-requests": str(math.floor(self.tokens)),
            "x-ratelimit-reset-requests": f"{refill:.3f}s",
        }

    def refused(self) -> web.Response:
        wait_ms = math.ceil((1.0 - self.tokens) / self.rate * 1000)
        response = rate_limited(wait_ms)
        response.headers.update(self.headers())
        return response
