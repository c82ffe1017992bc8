"""The log's secret key for the audit and blind draws: made once per log, on first use, and kept in
`log_settings`, so every run and the review app draw the same items from the same log, and no
one who only knows the item ids can tell which."""

import secrets

import duckdb

AUDIT_KEY = "audit_key"


def audit_key(con: duckdb.DuckDBPyConnection) -> str:
    """The log's audit key (64 hex digits), made now if the log has none yet."""
    row = con.execute("SELECT value FROM log_settings WHERE name = ?", [AUDIT_KEY]).fetchone()
    if row is None:
        con.execute(
            "INSERT INTO log_settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [AUDIT_KEY, secrets.token_hex(32)],
        )
        row = con.execute("SELECT value FROM log_settings WHERE name = ?", [AUDIT_KEY]).fetchone()
    return row[0]
