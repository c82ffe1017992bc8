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

from labelagent.review.accounts import Reviewer, account, verified
from labelagent.store.db import transaction
from labelagent.store.log import now
from labelagent.store.review import accounts as store

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
        found = store.failures(con, kind, key)
        if (
            found
            and wait_after(found.failures)
            and moment - found.last_failed_at < FORGET_FAILURES_AFTER
        ):
            free_at = found.last_failed_at + wait_after(found.failures)
            longest = max(longest, (free_at - moment).total_seconds())
    return longest


def _count_attempt(con: Any, name: str, client: str, moment: datetime) -> None:
    """Count the attempt as failed before the password is checked, so attempts made at the
    same moment cannot all slip past the count; a success takes it back."""
    store.forget_failures_before(con, moment - FORGET_FAILURES_AFTER)
    for kind, key in _subjects(name, client):
        store.count_failure(con, kind, key, moment)


def _forgive(con: Any, name: str, client: str) -> None:
    """A success: the name's failures are forgotten, and this attempt no longer counts against
    the client."""
    (name_key, client_key) = (key for _, key in _subjects(name, client))
    store.forget_failures(con, "name", name_key)
    store.take_back_failure(con, "client", client_key)


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
        store.add_session(
            con, token_hash(token), reviewer.name, client, moment, moment + SESSION_LIFETIME
        )
    return SignIn(reviewer=reviewer, token=token)


def session_reviewer(db: str | Path, token: str, moment: datetime | None = None) -> Reviewer | None:
    """The reviewer a token belongs to, with their role as it is now; None when the token is
    unknown, expired or revoked, or the account is gone."""
    if not token:
        return None
    with transaction(db) as con:
        found = store.session_account(con, token_hash(token), moment or now())
    return Reviewer(name=found.name, role=found.role) if found else None


def end_session(db: str | Path, token: str) -> None:
    """Sign-out: the token is refused from now on, wherever it is kept."""
    with transaction(db) as con:
        store.revoke_session(con, token_hash(token), now())
