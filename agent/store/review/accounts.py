"""The statements behind reviewer accounts, sign-in sessions and failed sign-ins."""

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class Failures:
    failures: int
    last_failed_at: datetime


def put_account(con: DuckDBPyConnection, name: str, role: str, password_hash: str) -> None:
    con.execute(
        "INSERT INTO reviewers (name, role, password_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
        " password_hash = excluded.password_hash, created_at = excluded.created_at",
        [name, role, password_hash],
    )


def account(con: DuckDBPyConnection, name: str) -> Account | None:
    rows = con.execute(
        "SELECT name, role, password_hash FROM reviewers WHERE name = $1", [name]
    ).fetchall()
    return Account(*rows[0]) if rows else None


def accounts(con: DuckDBPyConnection) -> list[Account]:
    rows = con.execute("SELECT name, role, password_hash FROM reviewers ORDER BY name").fetchall()
    return [Account(*row) for row in rows]


def count_accounts(con: DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM reviewers").fetchall()[0][0]


def set_password_hash(con: DuckDBPyConnection, name: str, password_hash: str) -> None:
    con.execute("UPDATE reviewers SET password_hash = $1 WHERE name = $2", [password_hash, name])


def delete_account(con: DuckDBPyConnection, name: str) -> None:
    con.execute("DELETE FROM reviewers WHERE name = $1", [name])


def revoke_sessions_of(con: DuckDBPyConnection, reviewer: str, moment: datetime) -> None:
    con.execute(
        "UPDATE reviewer_sessions SET revoked_at = $1 WHERE reviewer = $2 AND revoked_at IS NULL",
        [moment, reviewer],
    )


def add_session(
    con: DuckDBPyConnection,
    token_sha256: str,
    reviewer: str,
    client: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    con.execute(
        "INSERT INTO reviewer_sessions (token_sha256, reviewer, client, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [token_sha256, reviewer, client, created_at, expires_at],
    ).fetchall()


def session_account(con: DuckDBPyConnection, token_sha256: str, moment: datetime) -> Account | None:
    """The account of a session that is neither revoked nor expired at `moment`."""
    rows = con.execute(
        "SELECT r.name, r.role, r.password_hash FROM reviewer_sessions s"
        " JOIN reviewers r ON r.name = s.reviewer"
        " WHERE s.token_sha256 = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
        [token_sha256, moment],
    ).fetchall()
    return Account(*rows[0]) if rows else None


def revoke_session(con: DuckDBPyConnection, token_sha256: str, moment: datetime) -> None:
    con.execute(
        "UPDATE reviewer_sessions SET revoked_at = ? WHERE token_sha256 = ? AND revoked_at IS NULL",
        [moment, token_sha256],
    ).fetchall()


def failures(con: DuckDBPyConnection, kind: str, key: str) -> Failures | None:
    rows = con.execute(
        "SELECT failures, last_failed_at FROM sign_in_failures WHERE kind = ? AND key = ?",
        [kind, key],
    ).fetchall()
    return Failures(*rows[0]) if rows else None


def forget_failures_before(con: DuckDBPyConnection, moment: datetime) -> None:
    con.execute("DELETE FROM sign_in_failures WHERE last_failed_at <= ?", [moment]).fetchall()


def count_failure(con: DuckDBPyConnection, kind: str, key: str, moment: datetime) -> None:
    con.execute(
        "INSERT INTO sign_in_failures (kind, key, failures, last_failed_at) VALUES (?, ?, 1, ?)"
        " ON CONFLICT (kind, key) DO UPDATE"
        " SET failures = failures + 1, last_failed_at = excluded.last_failed_at",
        [kind, key, moment],
    ).fetchall()


def forget_failures(con: DuckDBPyConnection, kind: str, key: str) -> None:
    con.execute("DELETE FROM sign_in_failures WHERE kind = ? AND key = ?", [kind, key]).fetchall()


def take_back_failure(con: DuckDBPyConnection, kind: str, key: str) -> None:
    con.execute(
        "UPDATE sign_in_failures SET failures = failures - 1 WHERE kind = ? AND key = ?",
        [kind, key],
    ).fetchall()
