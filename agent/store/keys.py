"""The log's secret key for the audit and blind draws: made once per log, on first use, and kept in
`log_settings`, so every run and the review app draw the same items from the same log, and no
one who only knows the item ids can tell which."""

import secrets

from labelagent.store.db import Connection

AUDIT_KEY = "audit_key"


def audit_key(con: Connection) -> str:
    """The log's audit key (64 hex digits), made now if the log has none yet."""
    row = con.execute("SELECT value FROM log_settings WHERE name = $1", [AUDIT_KEY]).fetchone()
    if row is None:
        con.execute(
            "INSERT INTO log_settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [AUDIT_KEY, secrets.token_hex(32)],
        )
        row = con.execute("SELECT value FROM log_settings WHERE name = $1", [AUDIT_KEY]).fetchone()
    return row[0]
