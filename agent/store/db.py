"""The DuckDB file: short-lived connections, so the agent, the review app and imports can share it.

DuckDB lets one process hold a file at a time (even read-only). Every operation here opens the file,
does its work in one transaction and closes it again, retrying while another process holds the lock.
"""

import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from agent.errors import DatabaseError
from agent.store.migrations import MIGRATIONS

# How long to wait for another process to let go of the file (LABELAGENT_DB_WAIT_SECONDS).
LOCK_WAIT_SECONDS = float(os.environ.get("LABELAGENT_DB_WAIT_SECONDS", "60"))
# The log's transactions are small; one thread and a modest cap keep the agent's memory flat.
DUCKDB_CONFIG = {"threads": "1", "memory_limit": "256MB"}
T = TypeVar("T")
_IN_PROCESS = (
    threading.RLock()
)  # DuckDB shares one instance per file within a process; one user at a time
_side_locks: dict[str, int] = {}  # how deep this process holds each file's side lock


def require_existing(path: str | Path) -> None:
    """For commands that read a log: a missing file is a mistake, not an empty log to create."""
    if not Path(path).exists():
        raise DatabaseError(
            f"{path}: no such database", hint="Run `labelagent label` or `labelagent demo` first."
        )


def _is_lock_error(error: Exception) -> bool:
    if not isinstance(error, duckdb.IOException):
        return False
    text = str(error)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


@contextmanager
def connect(
    path: str | Path, wait: float = LOCK_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database, waiting up to `wait` seconds while another process holds it."""
    with _IN_PROCESS, _side_lock(path, wait), _open(path, wait) as con:
        yield con


@contextmanager
def _side_lock(path: str | Path, wait: float) -> Iterator[None]:
    """An exclusive flock on `<db>.lock`, taken before DuckDB opens the file and given back after
    it is closed, so only one process at a time even tries to open it. DuckDB's own lock alone is
    not enough: when processes open and close one file in turn, DuckDB 2.0 now and then loses a
    committed transaction (tests/test_concurrent_writers.py). Nested connections take it once."""
    key = str(Path(path).resolve())
    if _side_locks.get(key):
        _side_locks[key] += 1
        try:
            yield
        finally:
            _side_locks[key] -= 1
        return
    with open(f"{path}.lock", "a") as handle:
        _retry(
            lambda: fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB),
            path,
            wait,
            lambda e: isinstance(e, BlockingIOError),
        )
        _side_locks[key] = 1
        try:
            yield
        finally:
            _side_locks[key] = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def _retry(
    take: Callable[[], T], path: str | Path, wait: float, busy: Callable[[Exception], bool]
) -> T:
    """`take()` again, with jittered backoff, while it fails because another process is busy."""
    deadline = time.monotonic() + wait
    delay = 0.002
    while True:
        try:
            return take()
        except Exception as e:
            if not busy(e):
                raise
            if time.monotonic() > deadline:
                raise DatabaseError(
                    f"{path}: another process has held the database for {wait:.0f} s"
                ) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)


@contextmanager
def _open(path: str | Path, wait: float) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = _retry(
            lambda: duckdb.connect(str(path), config=DUCKDB_CONFIG), path, wait, _is_lock_error
        )
    except duckdb.Error as e:
        raise DatabaseError(f"{path}: cannot open the database: {e}") from None
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction on a fresh connection: committed if the block succeeds, else rolled back."""
    with connect(path) as con:
        con.begin()
        try:
            yield con
        except BaseException:
            con.rollback()
            raise
        con.commit()


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(path: str | Path, target: int | None = None) -> list[int]:
    """Bring the database to the newest schema (or to `target`), then read back the items a run
    could not write (agent/store/journal.py); returns the versions applied."""
    applied = []
    with transaction(path) as con:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
        )
        current = schema_version(con)
        newest = MIGRATIONS[-1].version
        if current > newest:
            raise DatabaseError(
                f"{path}: the database has schema version {current}, newer than this labelagent "
                f"knows ({newest})",
                hint="Upgrade labelagent.",
            )
        for migration in MIGRATIONS:
            if current < migration.version <= (target or newest):
                con.execute(migration.sql)
                con.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    [migration.version, migration.name],
                )
                applied.append(migration.version)
    from agent.store.journal import replay  # it writes through the log, which imports this module

    replay(path)
    return applied
