"""The labeling run's writes: finished items, batched, never dropped.

An item leaves the buffer only after the transaction holding it has committed. Between flushes the
database stays open in this process (`KeptOpen`: a flush costs no open, checkpoint and close) and is
handed to any other process that asks for it within `PROBE_SECONDS` and the time to close it.
While the database cannot be written (another process holds it, the disk is full) the write is
tried again; if it stays unwritable, the buffered items, and every item finished after that, go
to the journal (agent/store/journal.py), and `failure()` is the error that stops the run.
"""

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from labelagent.errors import DatabaseError
from labelagent.store import journal, log
from labelagent.store.db import KeptOpen

ATTEMPTS = 3  # each waits up to LABELAGENT_DB_WAIT_SECONDS for a held file
PAUSE_SECONDS = 1.0  # before the second attempt; doubled before each later one
PROBE_SECONDS = 0.05  # how often the writer looks whether another process waits for the file
# DuckDB keeps what an open file's writes read (its indexes above all) in memory; closing it now
# and then keeps a long run's memory flat, as when every write opened and closed it.
KEEP_SECONDS = 60.0
T = TypeVar("T")


def with_retries(db: str | Path, work: Callable[[], T]) -> T:
    """`work()`, tried again after a pause while the database cannot be used."""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_SECONDS * 2 ** (attempt - 1))
        try:
            return work()
        except DatabaseError as e:
            error = e
        except (duckdb.Error, OSError) as e:
            error = DatabaseError(f"{db}: {e}")
    raise error


class ResultWriter:
    def __init__(self, db: str | Path, every_items: int, every_seconds: float) -> None:
        self.db, self.every_items, self.every_seconds = db, every_items, every_seconds
        self.entries: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.cause: str | None = None  # why the database could not be written
        self.journal: Path | None = None
        self.journaled = 0
        self._flushing = asyncio.Lock()
        self.kept = KeptOpen(db)
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._let_go_when_asked, daemon=True)

    async def start(self) -> None:
        """Hold the database open from now on (letting go whenever another process asks)."""
        await asyncio.to_thread(self._hold)
        self._watcher.start()

    async def close(self) -> None:
        """Stop holding the database; call after the last flush."""
        self._closing.set()
        if self._watcher.is_alive():
            await asyncio.to_thread(self._watcher.join)
        await asyncio.to_thread(self.kept.close)

    def _hold(self) -> None:
        try:
            with_retries(self.db, self.kept.hold)
        except DatabaseError as e:
            self.cause = " ".join(str(e).split())

    def _let_go_when_asked(self) -> None:
        """A thread of its own, so that a busy event loop does not keep another process
        waiting."""
        while not self._closing.wait(PROBE_SECONDS):
            kept_for = time.monotonic() - self.kept.opened
            if self.kept.asked() or (self.kept.con and kept_for >= KEEP_SECONDS):
                self.kept.let_go()

    def add(self, entry: dict[str, Any]) -> None:
        """One finished item: {"drafts": [...], "decision": row or None, "retry": row or None}."""
        self.entries.append(entry)

    def due(self) -> bool:
        return len(self.entries) >= self.every_items or (
            bool(self.entries) and time.monotonic() - self.last >= self.every_seconds
        )

    async def flush(self, wait: bool = True) -> None:
        """Write what is buffered. With `wait=False` a flush already under way is left to
        finish (items added meanwhile go in the next one)."""
        if self._flushing.locked() and not wait:
            return
        async with self._flushing:
            batch = list(self.entries)
            if not batch:
                return
            if self.cause is None:
                await asyncio.to_thread(self._write, batch)
            if self.cause is not None:
                self.journal = await asyncio.to_thread(journal.append, self.db, batch)
                self.journaled += len(batch)
            del self.entries[: len(batch)]  # only appended to meanwhile
            self.last = time.monotonic()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            with_retries(self.db, lambda: self._hold_and_write(batch))
        except DatabaseError as e:
            self.cause = " ".join(str(e).split())

    def _hold_and_write(self, batch: list[dict[str, Any]]) -> None:
        self.kept.hold()
        log.write_entries(self.db, batch)

    def failure(self) -> DatabaseError | None:
        if self.cause is None:
            return None
        return DatabaseError(
            f"{self.db}: the run stopped because the database could not be written "
            f"({self.cause}); the {self.journaled} finished items not in it are kept in "
            f"{self.journal}, and the next labelagent command that opens {self.db} reads them in "
            "first",
            hint="Free disk space or close the program holding the database, then run the same "
            "command again: nothing paid for is asked for again.",
        )
