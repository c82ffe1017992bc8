"""Sign-in sessions and the brake on guessing passwords, both kept in the log so that every app
process serving one database, and every restart, sees the same ones.

A session is a random token the browser keeps (a cookie); the log holds only its sha256, the
reviewer, and when it expires or was revoked. Failed sign-ins are counted per name typed and per
client (IP address); after FREE_FAILURES in a row, the next attempt waits, twice as long after
each further failure.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.review.accounts import Reviewer, account, verified
from agent.store.db import transaction
from agent.store.log import now

SESSION_LIFETIME = timedelta(hours=12)
FREE_FAILURES = 5
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
FORGET_FAILURES_AFTER = timedelta(days=1)
LONGEST_NAME = 200


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to: a reviewer and their new token, or how long to wait."""

    reviewer: Reviewer | None = None
    token: str | None = None
    wait_seconds: float = 0.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def wait_after(failures: int) -> timedelta:
    """How long the next attempt must wait after `failures` failed ones in a row."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(FIRST_WAIT * 2 ** (failures - FREE_FAILURES), LONGEST_WAIT)


def _subjects(name: str, client: str) -> list[tuple[str, str]]:
    return [("name", name.strip()[:LONGEST_NAME]), ("client", client)]


def _wait(con: Any, name: str, client: str, moment: datetime) -> float:
    """Seconds until `name` from `client` may try again (0: now)."""
    longest = 0.0
    for kind, key in _subjects(name, client):
        rows = con.execute(
            "SELECT failures, last_failed_at FROM sign_in_failures WHERE kind = ? AND key = ?",
            [kind, key],
        ).fetchall()
        if rows and wait_after(rows[0][0]) and moment - rows[0][1] < FORGET_FAILURES_AFTER:
            free_at = rows[0][1] + wait_after(rows[0][0])
            longest = max(longest, (free_at - moment).total_seconds())
    return longest


def _count_attempt(con: Any, name: str, client: str, moment: datetime) -> None:
    """Count the attempt as failed before the password is checked, so attempts made at the
    same moment cannot all slip past the count; a success takes it back."""
    con.execute(
        "DELETE FROM sign_in_failures WHERE last_failed_at <= ?", [moment - FORGET_FAILURES_AFTER]
    ).fetchall()
    for kind, key in _subjects(name, client):
        con.execute(
            "INSERT INTO sign_in_failures (kind, key, failures, last_failed_at) VALUES (?, ?, 1, ?)"
            " ON CONFLICT (kind, key) DO UPDATE"
            " SET failures = failures + 1, last_failed_at = excluded.last_failed_at",
            [kind, key, moment],
        ).fetchall()


def _forgive(con: Any, name: str, client: str) -> None:
    """A success: the name's failures are forgotten, and this attempt no longer counts against
    the client."""
    (name_key, client_key) = (key for _, key in _subjects(name, client))
    con.execute(
        "DELETE FROM sign_in_failures WHERE kind = 'name' AND key = ?", [name_key]
    ).fetchall()
    con.execute(
        "UPDATE sign_in_failures SET failures = failures - 1 WHERE kind = 'client' AND key = ?",
        [client_key],
    ).fetchall()


def sign_in(
    db: str | Path, name: str, password: str, client: str, moment: datetime | None = None
) -> SignIn:
    """Check a name and password unless this name or client must still wait; a success starts
    a session. A wrong name and a wrong password take the same path (one scrypt check each), so
    the time taken does not tell which names exist."""
    moment = moment or now()
    with transaction(db) as con:
        wait = _wait(con, name, client, moment)
        if wait > 0:
            return SignIn(wait_seconds=wait)
        _count_attempt(con, name, client, moment)
        found = account(con, name)
    reviewer = verified(found, password)
    if reviewer is None:
        return SignIn()
    token = secrets.token_urlsafe(32)
    with transaction(db) as con:
        _forgive(con, name, client)
        con.execute(
            "INSERT INTO reviewer_sessions (token_sha256, reviewer, client, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [token_hash(token), reviewer.name, client, moment, moment + SESSION_LIFETIME],
        ).fetchall()
    return SignIn(reviewer=reviewer, token=token)


def session_reviewer(db: str | Path, token: str, moment: datetime | None = None) -> Reviewer | None:
    """The reviewer a token belongs to, with their role as it is now; None when the token is
    unknown, expired or revoked, or the account is gone."""
    if not token:
        return None
    with transaction(db) as con:
        rows = con.execute(
            "SELECT r.name, r.role FROM reviewer_sessions s JOIN reviewers r ON r.name = s.reviewer"
            " WHERE s.token_sha256 = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
            [token_hash(token), moment or now()],
        ).fetchall()
    return Reviewer(name=rows[0][0], role=rows[0][1]) if rows else None


def end_session(db: str | Path, token: str) -> None:
    """Sign-out: the token is refused from now on, wherever it is kept."""
    with transaction(db) as con:
        con.execute(
            "UPDATE reviewer_sessions SET revoked_at = ? WHERE token_sha256 = ?"
            " AND revoked_at IS NULL",
            [now(), token_hash(token)],
        ).fetchall()
