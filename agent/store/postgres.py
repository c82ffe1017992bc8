"""The PostgreSQL log: pooled psycopg connections, and the numbered migrations run on PostgreSQL.

Connections use psycopg's `RawCursor`, so statements take PostgreSQL's own `$1, $2` placeholders,
which DuckDB accepts too: one statement text serves both backends. (A `$n` used twice must have one
type in both places; PostgreSQL refuses `VALUES ($1, $1)` into a VARCHAR and a JSON column.) JSON
columns read back as text, as DuckDB returns them, and sessions run in UTC.
"""

import atexit
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import psycopg
from psycopg.types.string import TextBinaryLoader, TextLoader
from psycopg_pool import ConnectionPool

from labelagent.errors import DatabaseError
from labelagent.store import migrations
from labelagent.store.address import PostgresUrl
from labelagent.store.catalog import holds_log
from labelagent.store.migrations import MIGRATIONS

NEWEST = MIGRATIONS[-1].version
CONNECT_SECONDS = 10
POOL_SIZE = 4
# DuckDB type names PostgreSQL does not know, and the PostgreSQL type each becomes.
TYPES = {"DOUBLE": "DOUBLE PRECISION", "BLOB": "BYTEA"}
_TYPE_WORDS = re.compile(r"\b(" + "|".join(TYPES) + r")\b")
# Any fixed number: the advisory lock that lets one process at a time migrate a database.
_MIGRATION_LOCK = 7_213_554
_pools: dict[str, ConnectionPool] = {}

UNREACHABLE_HINT = (
    "Check the URL (postgresql://user@host:port/name), that the server is running and "
    "reachable, and the user's password (in the URL or in ~/.pgpass)."
)


def for_postgres(sql: str) -> str:
    """A migration's DuckDB DDL in PostgreSQL's words: only the type names differ."""
    return _TYPE_WORDS.sub(lambda m: TYPES[m.group(1)], sql)


def _configure(con: psycopg.Connection) -> None:
    con.adapters.register_loader("json", TextLoader)
    con.adapters.register_loader("json", TextBinaryLoader)
    con.execute("SET TIME ZONE 'UTC'")
    con.commit()


def _pool(db: PostgresUrl) -> ConnectionPool:
    """This process's pool for `db`, opened on first use after one plain connection has shown
    that the server answers (the pool alone would retry quietly until its timeout)."""
    if db.url not in _pools:
        try:
            psycopg.connect(db.url, connect_timeout=CONNECT_SECONDS).close()
        except psycopg.Error as e:
            raise DatabaseError(
                f"{db}: cannot connect to PostgreSQL: {_reason(e)}", UNREACHABLE_HINT
            ) from None
        pool = ConnectionPool(
            db.url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"cursor_factory": psycopg.RawCursor, "connect_timeout": CONNECT_SECONDS},
            configure=_configure,
            check=ConnectionPool.check_connection,
            open=True,
        )
        atexit.register(pool.close)
        _pools[db.url] = pool
    return _pools[db.url]


def close(db: PostgresUrl) -> None:
    """Close this process's connections to `db` (they are also closed at exit)."""
    if pool := _pools.pop(db.url, None):
        pool.close()


def _reason(error: psycopg.Error) -> str:
    return " ".join(str(error).split())


@contextmanager
def transaction(db: PostgresUrl, read_only: bool = False) -> Iterator[psycopg.Connection]:
    """One transaction on a pooled connection: committed if the block succeeds, else rolled back.
    A connection lost on the way becomes a DatabaseError naming the database."""
    try:
        with _pool(db).connection() as con:
            if read_only:
                con.execute("SET TRANSACTION READ ONLY")
            yield con
    except psycopg.OperationalError as e:
        raise DatabaseError(
            f"{db}: PostgreSQL stopped the transaction ({_reason(e)}); nothing of it was kept",
            "Check that the server is up and reachable, then run the same command again.",
        ) from None


def no_log(db: PostgresUrl) -> DatabaseError:
    return DatabaseError(
        f"{db}: no labelagent log in this database",
        hint=f"Run `labelagent label --db {db}` or `labelagent copy --to {db}` first.",
    )


def not_a_log(db: PostgresUrl, why: str) -> DatabaseError:
    return DatabaseError(
        f"{db}: not a labelagent database ({why})",
        "Give --db a database of its own for labelagent; labelagent wrote nothing.",
    )


def check_log(con: psycopg.Connection, db: PostgresUrl) -> int:
    """The schema version of the log in `db`: 0 for a database with no tables. Refuses one whose
    tables were made by another program."""
    found = holds_log(
        con,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
        ("integer", "character varying"),
        partial(not_a_log, db),
    )
    if not found:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def too_new(db: PostgresUrl, version: int) -> DatabaseError:
    return DatabaseError(
        f"{db}: the database has schema version {version}, newer than this labelagent "
        f"knows ({NEWEST})",
        hint="Upgrade labelagent; it changed nothing in the database.",
    )


def migrate(db: PostgresUrl, target: int | None = None) -> list[int]:
    """Bring the database to the newest schema (or to `target`) in one transaction, one process
    at a time; returns the versions applied."""
    with transaction(db) as con:
        con.execute("SELECT pg_advisory_xact_lock($1)", [_MIGRATION_LOCK])
        current = check_log(con, db)
        if current > NEWEST:
            raise too_new(db, current)
        applied = migrations.apply(con, current, target, for_postgres)
    return applied


def schema_version(db: PostgresUrl) -> int:
    with transaction(db, read_only=True) as con:
        return check_log(con, db)
