"""`--budget`: the most a guideline may cost with the run's models, counted over every run.

The ledger starts at what earlier runs spent (their drafts' cost). Every request reserves its
worst-case cost before it is sent and settles to its real cost when the answer is back, so what
is spent plus what is reserved never goes above the limit, at any concurrency. A request that
would go above it waits while other requests are in flight (they may give back part of their
reservation) and is refused once it cannot fit even with nothing in flight.
"""

import asyncio


class Budget:
    def __init__(self, limit: float, spent: float = 0.0) -> None:
        self.limit = limit
        self.spent = spent  # earlier runs, plus this run's settled requests
        self.reserved = 0.0  # worst cases of the requests in flight
        self.refused = False  # a request could not be afforded: start no new item
        self._settled = asyncio.Event()

    async def reserve(self, amount: float) -> bool:
        """Hold `amount` dollars for a request about to be sent; False if it cannot be afforded."""
        while self.spent + self.reserved + amount > self.limit:
            if self.spent + amount > self.limit:
                self.refused = True
                return False
            self._settled.clear()
            await self._settled.wait()
        self.reserved += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        """Give back a reservation and count what the request really cost (0 if it failed)."""
        self.reserved -= reserved
        self.spent += actual
        self._settled.set()
