"""Where a log lives: a DuckDB file (a path) or a PostgreSQL database (a postgresql:// URL).

A `PostgresUrl` prints without its password, so messages and progress lines can name it freely;
only the connection code reads `.url`.
"""

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class PostgresUrl:
    url: str = field(repr=False)

    def __str__(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"PostgresUrl({redact(self.url)!r})"


Db = Path | PostgresUrl


def redact(url: str) -> str:
    """The URL without a password, in its user part or in its query string."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_db(value: "str | Db") -> Db:
    """`--db` and LABELAGENT_DB: a postgresql:// (or postgres://) URL, else a DuckDB file path."""
    if isinstance(value, PostgresUrl | Path):
        return value
    if value.startswith(SCHEMES):
        return PostgresUrl(value)
    return Path(value)


def postgres_url(db: "str | Path | PostgresUrl") -> PostgresUrl | None:
    """The PostgreSQL URL `db` names, or None for a DuckDB file."""
    if isinstance(db, PostgresUrl):
        return db
    if isinstance(db, str) and db.startswith(SCHEMES):
        return PostgresUrl(db)
    return None
