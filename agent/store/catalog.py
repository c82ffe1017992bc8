"""Whether a database holds a labelagent log, judged the same way on DuckDB and PostgreSQL from
what each one's catalog says: its tables, and the types of `schema_migrations`' columns."""

from collections.abc import Callable
from typing import Any

from labelagent.errors import DatabaseError


def holds_log(
    con: Any,
    tables_query: str,
    columns_query: str,
    expected: tuple[str, str],
    not_a_log: Callable[[str], DatabaseError],
) -> bool:
    """True when the database holds a log, False when it has no tables yet. Refuses one whose
    tables another program made. The backend gives its catalog queries (`tables_query`: table
    names; `columns_query`: name and type of each column of `schema_migrations`) and its names
    for the types of `schema_migrations.version` and `.name` (`expected`)."""
    tables = {row[0] for row in con.execute(tables_query).fetchall()}
    if "schema_migrations" not in tables:
        if tables:
            listed = ", ".join(sorted(tables)[:5])
            raise not_a_log(f"it has tables {listed} and no schema_migrations")
        return False
    columns = dict(con.execute(columns_query).fetchall())
    if (columns.get("version"), columns.get("name")) != expected:
        raise not_a_log("its schema_migrations table is not labelagent's")
    return True
