"""The log's database: a DuckDB file (the default), or PostgreSQL for a postgresql:// URL.

Every function here takes either; agent/store/postgres.py does the PostgreSQL side.
DuckDB: short-lived connections, so the agent, the review app and imports can share the file.

DuckDB lets one process hold a file at a time (even read-only). Every operation here opens the file,
does its work in one transaction and closes it again, retrying while another process holds the lock.
A labeling run keeps the file open between its writes (`KeptOpen`) and lets go within ~0.1 s when
another process asks for it. Read commands open it read-only (`read_only`) and never upgrade it;
writers upgrade it (`migrate`), and neither treats a file that is not a labelagent log as one.
"""

import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn, TypeAlias, TypeVar

import duckdb
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay

from labelagent.errors import DatabaseError
from labelagent.store import migrations
from labelagent.store.address import PostgresUrl, postgres_url
from labelagent.store.catalog import holds_log
from labelagent.store.migrations import MIGRATIONS

# How long to wait for another process to let go of the file (LABELAGENT_DB_WAIT_SECONDS).
LOCK_WAIT_SECONDS = float(os.environ.get("LABELAGENT_DB_WAIT_SECONDS", "60"))
# The log's transactions are small; one thread and a modest cap keep the agent's memory flat.
# A checkpoint once the write-ahead log holds 1 MB (not 16): a run that keeps the file open then
# hands it over without first checkpointing a minute of writes.
DUCKDB_CONFIG = {"threads": "1", "memory_limit": "256MB", "checkpoint_threshold": "1MB"}
if TYPE_CHECKING:
    from types import ModuleType

    import psycopg

T = TypeVar("T")
Connection: TypeAlias = "duckdb.DuckDBPyConnection | psycopg.Connection"
Location = str | Path | PostgresUrl
_IN_PROCESS = (
    threading.RLock()
)  # DuckDB shares one instance per file within a process; one user at a time
_side_locks: dict[str, int] = {}  # how deep this process holds each file's side lock
_kept: dict[str, "KeptOpen"] = {}  # the files this process keeps open between transactions
_read_only_paths: ContextVar[frozenset[str]] = ContextVar("read_only", default=frozenset())
NEWEST = MIGRATIONS[-1].version
HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers, before the blocks
DAMAGED = "Restore the file from a backup, or give --db another path; labelagent wrote nothing."
# What DuckDB says when a file is no DuckDB database, or when its bytes are not what it expects.
NOT_DUCKDB = "not a valid DuckDB database file"
_DAMAGE_SIGNS = (NOT_DUCKDB, "Corrupt database file", "read enough bytes")


def _postgres() -> "ModuleType":
    """agent/store/postgres.py, imported when a postgresql:// URL is first opened: psycopg takes
    about 130 ms to import, which DuckDB commands need not pay."""
    from labelagent.store import postgres

    return postgres


def require_existing(path: Location) -> None:
    """For commands that read a log: a missing file (or a database with no log in it) is a
    mistake, not an empty log to create."""
    if url := postgres_url(path):
        if _postgres().schema_version(url) == 0:
            raise _postgres().no_log(url)
        return
    if not Path(path).exists():
        raise DatabaseError(
            f"{path}: no such database", hint="Run `labelagent label` or `labelagent demo` first."
        )


@contextmanager
def read_only(path: Location, any_version: bool = False) -> Iterator[int]:
    """Inside this block every connection to `path` is read-only, so a read command can neither
    upgrade nor change the log. The file must exist and be a labelagent log at this labelagent's
    schema version (with `any_version`: any older one, or a DuckDB file with no tables yet);
    yields that version."""
    url = postgres_url(path)
    if url is None:
        require_existing(path)
    token = _read_only_paths.set(_read_only_paths.get() | {_key(path)})
    try:
        version = _version(path)
        if version > NEWEST:
            raise _too_new(path, version)
        if version == 0 and not any_version:
            raise _no_log(path)
        if version < NEWEST and not any_version:
            raise DatabaseError(
                f"{path}: the database has schema version {version}; this labelagent reads "
                f"version {NEWEST}",
                hint=f"Run `labelagent migrate --db {path}` to upgrade it (it keeps every row).",
            )
        yield version
    finally:
        _read_only_paths.reset(token)


def _no_log(path: Location) -> DatabaseError:
    if url := postgres_url(path):
        return _postgres().no_log(url)
    return not_a_log(path, "it has no tables")


def _version(path: Location) -> int:
    if url := postgres_url(path):
        return _postgres().schema_version(url)
    with connect(path) as con:
        return check_log(con, path)


def _key(path: Location) -> str:
    if url := postgres_url(path):
        return url.url
    return str(Path(path).resolve())


def _is_lock_error(error: Exception) -> bool:
    if not isinstance(error, duckdb.IOException):
        return False
    text = str(error)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


@contextmanager
def connect(path: Location, wait: float = LOCK_WAIT_SECONDS) -> Iterator[Connection]:
    """Open the database (read-only inside `read_only(path)`), waiting up to `wait` seconds while
    another process holds it. A damaged file met while reading it becomes a DatabaseError.
    On PostgreSQL the block is one transaction on a pooled connection."""
    read_only = _key(path) in _read_only_paths.get()
    if url := postgres_url(path):
        with _postgres().transaction(url, read_only) as con:
            yield con
        return
    with _IN_PROCESS, _side_lock(path, wait, read_only), _open(path, wait, read_only) as con:
        try:
            yield con
        except duckdb.Error as e:
            if _damaged(e):
                raise DatabaseError(f"{path}: the database file is damaged: {e}", DAMAGED) from None
            raise


@contextmanager
def _side_lock(path: str | Path, wait: float, read_only: bool) -> Iterator[None]:
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
    handle = _lock_file(path, read_only)
    if handle is None:
        yield
        return
    with handle:
        _retry(lambda: _take(handle, key), path, wait, lambda e: isinstance(e, BlockingIOError))
        _side_locks[key] = 1
        try:
            yield
        finally:
            _side_locks[key] = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def _take(handle: IO[str], key: str) -> None:
    """The side lock, or BlockingIOError. The process that holds it waits for the file, which
    this process may be keeping open (`KeptOpen`): let go of it, or both wait forever."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if key in _kept:
            _kept[key].let_go()
        raise


def _lock_file(path: str | Path, read_only: bool) -> IO[str] | None:
    """`<db>.lock`, created if missing. A reader on a read-only file system takes it as it is, or
    goes without when there is none: nobody can write there either."""
    lock = Path(f"{path}.lock")
    try:
        return open(lock, "a")
    except OSError as e:
        if read_only and lock.exists():
            return open(lock)
        if read_only and Path(path).exists():
            return None
        raise unwritable(path, e) from None


def unwritable(path: str | Path, error: OSError) -> DatabaseError:
    """The message for a database path labelagent cannot write at."""
    folder = Path(path).parent
    if not folder.is_dir():
        return DatabaseError(
            f"{path}: the folder {folder} does not exist",
            hint="Create the folder, or give --db a path in one that exists.",
        )
    return DatabaseError(
        f"{path}: cannot write there ({error.strerror})",
        hint="Give --db a path on a writable disk (status, export and eval can read a database on "
        "a read-only one).",
    )


def _retry(
    take: Callable[[], T], path: str | Path, wait: float, busy: Callable[[Exception], bool]
) -> T:
    """`take()` again, with jittered backoff, while it fails because another process is busy."""

    def give_up(state: RetryCallState) -> NoReturn:
        raise DatabaseError(f"{path}: another process has held the database for {wait:.0f} s")

    retrying = Retrying(
        retry=retry_if_exception(busy),
        stop=stop_after_delay(wait),
        wait=_backoff,
        retry_error_callback=give_up,
    )
    return retrying(take)


def _backoff(state: RetryCallState) -> float:
    """2 ms, doubling up to 50 ms, each wait jittered by +-50%."""
    return min(0.002 * 2 ** min(state.attempt_number - 1, 5), 0.05) * (0.5 + random.random())


@contextmanager
def _open(path: str | Path, wait: float, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    if read_only:
        require_existing(path)
    try:
        con = _retry(
            lambda: duckdb.connect(str(path), read_only=read_only, config=DUCKDB_CONFIG),
            path,
            wait,
            _is_lock_error,
        )
    except duckdb.Error as e:
        if NOT_DUCKDB in str(e):
            raise not_a_log(path, "DuckDB does not recognise the file") from None
        if _damaged(e):
            raise DatabaseError(f"{path}: the database file is damaged: {e}", DAMAGED) from None
        raise DatabaseError(f"{path}: cannot open the database: {e}") from None
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(path: Location) -> Iterator[Connection]:
    """One transaction on a fresh connection: committed if the block succeeds, else rolled back."""
    if postgres_url(path):
        with connect(path) as con:
            yield con
        return
    with connect(path) as con:
        con.begin()
        try:
            yield con
        except BaseException:
            con.rollback()
            raise
        con.commit()


def changed_rows(con: Connection, sql: str, params: list[object]) -> int:
    """Run an INSERT, UPDATE or DELETE and return how many rows it changed: DuckDB returns the
    count as a result row, psycopg as the cursor's rowcount."""
    cursor = con.execute(sql, params)
    if isinstance(con, duckdb.DuckDBPyConnection):
        return cursor.fetchall()[0][0]
    return cursor.rowcount


def _too_new(path: Location, version: int) -> DatabaseError:
    if url := postgres_url(path):
        return _postgres().too_new(url, version)
    return DatabaseError(
        f"{path}: the database has schema version {version}, newer than this labelagent "
        f"knows ({NEWEST})",
        hint="Upgrade labelagent.",
    )


def _damaged(error: duckdb.Error) -> bool:
    return any(sign in str(error) for sign in _DAMAGE_SIGNS)


def not_a_log(path: str | Path, why: str) -> DatabaseError:
    return DatabaseError(f"{path}: not a labelagent database ({why})", DAMAGED)


def check_log(con: duckdb.DuckDBPyConnection, path: str | Path) -> int:
    """The schema version of the log open on `con`: 0 for a file with no tables yet. Refuses a file
    that is cut short or made by another program, before anything reads or writes it."""
    _, _, block_size, _, used_blocks, *_ = con.execute("PRAGMA database_size").fetchone()
    expected, size = HEADER_BYTES + block_size * used_blocks, Path(path).stat().st_size
    if size < expected:
        raise DatabaseError(
            f"{path}: the database file is damaged: it is cut short ({size} of at least "
            f"{expected} bytes)",
            DAMAGED,
        )
    found = holds_log(
        con,
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'",
        "SELECT column_name, data_type FROM duckdb_columns()"
        " WHERE schema_name = 'main' AND table_name = 'schema_migrations'",
        ("INTEGER", "VARCHAR"),
        partial(not_a_log, path),
    )
    return schema_version(con) if found else 0


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(path: Location, target: int | None = None) -> list[int]:
    """Bring the database to the newest schema (or to `target`), then read back the items a run
    could not write (agent/store/journal.py); returns the versions applied."""
    if url := postgres_url(path):
        return _postgres().migrate(url, target)
    with transaction(path) as con:
        current = check_log(con, path)
        if current > NEWEST:
            raise _too_new(path, current)
        applied = migrations.apply(con, current, target)
    from labelagent.store.journal import (
        replay,  # it writes through the log, which imports this module
    )

    replay(path)
    return applied


def migrate_existing(path: Location) -> tuple[int, int]:
    """`labelagent migrate`: upgrade a log that exists; returns its schema version before and
    after."""
    require_existing(path)
    applied = migrate(path)
    return (applied[0] - 1 if applied else NEWEST), NEWEST


class KeptOpen:
    """The database held open by this process between its own transactions (a labeling run).

    While one connection stays open, every `connect` of this process reuses DuckDB's open
    instance of the file: a write costs no open, checkpoint and close (~30 ms of CPU each).
    Another process that wants the file takes the side lock `<db>.lock` and waits for DuckDB's;
    `asked`, called every few tens of milliseconds, sees that lock taken, `let_go` closes the
    connection, and the next `hold` opens it again once that process is done."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.con: duckdb.DuckDBPyConnection | None = None
        self.opened = 0.0  # time.monotonic() when the connection was opened
        self._probe: IO[str] | None = None

    def hold(self) -> None:
        """Open the file now, unless it is open already; waits like `connect`."""
        with connect(self.path):
            if self.con is None:
                self.con = duckdb.connect(str(self.path), config=DUCKDB_CONFIG)
                self.opened = time.monotonic()
                self._probe = self._probe or _lock_file(self.path, read_only=False)
                _kept[_key(self.path)] = self

    def asked(self) -> bool:
        """Whether another process holds the side lock, waiting for the file this one holds.
        Never blocks: while this process is using the file, the answer waits for the next call."""
        if self.con is None or self._probe is None or not _IN_PROCESS.acquire(blocking=False):
            return False
        try:
            fcntl.flock(self._probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(self._probe, fcntl.LOCK_UN)
            return False
        finally:
            _IN_PROCESS.release()

    def let_go(self) -> None:
        """Close the connection (DuckDB checkpoints the file), so another process can open it."""
        with _IN_PROCESS:
            if self.con is not None:
                self.con.close()
                self.con = None

    def close(self) -> None:
        self.let_go()
        _kept.pop(_key(self.path), None)
        if self._probe is not None:
            self._probe.close()
            self._probe = None
