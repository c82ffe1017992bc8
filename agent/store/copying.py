"""`labelagent copy`: a whole log from one database to another (DuckDB file or PostgreSQL, either
way), every table row for row, so a team can start on a laptop and move to a shared server.

The target must hold no rows: it is upgraded to the newest schema, then filled in one transaction.
PostgreSQL is read with binary COPY and written with COPY; DuckDB is written through Arrow.
"""

from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from pathlib import Path
from typing import Any

import pyarrow as pa

from labelagent.errors import DatabaseError
from labelagent.store.address import postgres_url
from labelagent.store.db import Connection, Location, migrate, read_only, transaction
from labelagent.store.schema_doc import POSTGRES_TYPES, Column, describe

BATCH_ROWS = 50_000  # rows held in memory at a time while writing to DuckDB
# Sequences behind a column default: after the copy each continues above the rows copied.
SEQUENCES = {"reviews_seq": ("reviews", "review_id")}
MIGRATIONS_TABLE = [
    Column("BASE TABLE", "schema_migrations", 1, "version", "INTEGER", False),
    Column("BASE TABLE", "schema_migrations", 2, "name", "VARCHAR", False),
    Column("BASE TABLE", "schema_migrations", 3, "applied_at", "TIMESTAMP", False),
]


def copy_log(source: Location, target: Location) -> dict[str, int]:
    """Copy every table of `source` (at this labelagent's schema version) into the empty
    `target`; returns the rows copied per table."""
    copied = {}
    with read_only(source):
        _refuse_rows(target)
        migrate(target)
        tables = _tables(source)
        with transaction(source) as src, transaction(target) as dst:
            dst.execute("DELETE FROM schema_migrations")
            for table, columns in tables.items():
                copied[table] = _write(dst, target, table, columns, _read(src, source, columns))
            for sequence, (table, column) in SEQUENCES.items():
                _continue_above(dst, target, sequence, table, column)
    return copied


def _tables(db: Location) -> dict[str, list[Column]]:
    tables = [c for c in describe(db) if c.kind == "BASE TABLE"] + MIGRATIONS_TABLE
    return {table: list(columns) for table, columns in groupby(tables, lambda c: c.table)}


def _refuse_rows(target: Location) -> None:
    """A target that already holds rows is refused before anything is written to it."""
    if postgres_url(target) is None and not Path(target).exists():
        return
    with read_only(target, any_version=True) as version:
        if version == 0:
            return
        with transaction(target) as con:
            for table in _tables(target):
                if table == "schema_migrations":
                    continue
                count = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                if count:
                    raise DatabaseError(
                        f"{target}: the target already holds a log ({count} rows in {table})",
                        hint="Copy into a new DuckDB file or an empty PostgreSQL database; "
                        "labelagent wrote nothing.",
                    )


def _names(columns: list[Column]) -> str:
    return ", ".join(f'"{c.name}"' for c in columns)


def _read(con: Connection, db: Location, columns: list[Column]) -> Iterator[tuple[Any, ...]]:
    table = columns[0].table
    if postgres_url(db) is None:
        yield from con.execute(f'SELECT {_names(columns)} FROM "{table}"').fetchall()
        return
    with (
        con.cursor() as cursor,
        cursor.copy(f'COPY "{table}" ({_names(columns)}) TO STDOUT (FORMAT BINARY)') as copy,
    ):
        copy.set_types([POSTGRES_TYPES[c.type] for c in columns])
        yield from copy.rows()


def _write(
    con: Connection, db: Location, table: str, columns: list[Column], rows: Iterable[tuple]
) -> int:
    written = 0
    if postgres_url(db):
        with (
            con.cursor() as cursor,
            cursor.copy(f'COPY "{table}" ({_names(columns)}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(row)
                written += 1
        return written
    rows = iter(rows)
    while batch := list(islice(rows, BATCH_ROWS)):
        arrow = pa.table({c.name: [row[i] for row in batch] for i, c in enumerate(columns)})
        con.register("copied_rows", arrow)
        con.execute(
            f'INSERT INTO "{table}" ({_names(columns)}) SELECT {_names(columns)} FROM copied_rows'
        )
        con.unregister("copied_rows")
        written += len(batch)
    return written


def _continue_above(con: Connection, db: Location, sequence: str, table: str, column: str) -> None:
    """The next value of `sequence` is above every copied `column` (DuckDB's sequences cannot be
    set, so there it is drawn that many times)."""
    top = con.execute(f'SELECT max("{column}") FROM "{table}"').fetchone()[0]
    if top is None:
        return
    if postgres_url(db):
        con.execute(f"SELECT setval('{sequence}', $1)", [top])
    else:
        con.execute(f"SELECT max(nextval('{sequence}')) FROM range($1)", [top])
