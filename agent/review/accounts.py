"""Reviewer accounts with scrypt-hashed secrets, stored in the database."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelagent.errors import ConfigError
from labelagent.store.db import migrate, transaction
from labelagent.store.log import now
from labelagent.store.review import accounts as store
from labelagent.store.review import queue as queue_store
from labelagent.store.review.accounts import Account

ROLES = ("reviewer", "adjudicator")
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class Reviewer:
    name: str
    role: str

    @property
    def can_adjudicate(self) -> bool:
        return self.role == "adjudicator"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        mine = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(mine.hex(), digest)


# Checked for a name that has no account, so a wrong name costs the same scrypt work as a wrong
# password. Random salt and digest: no password matches it.
DUMMY_HASH = f"scrypt${_N}${_R}${_P}${secrets.token_hex(16)}${secrets.token_hex(32)}"


def _new_password(password: str | None) -> str:
    password = password or secrets.token_urlsafe(12)
    if len(password) < 8:
        raise ConfigError("a password needs at least 8 characters")
    return password


def add_reviewer(db: str | Path, name: str, role: str, password: str | None = None) -> str:
    """Create or reset an account (a reset signs the reviewer out everywhere); returns the
    password (generated when none is given)."""
    name = name.strip()
    if not name:
        raise ConfigError("a reviewer needs a name")
    if role not in ROLES:
        raise ConfigError(f"--role {role!r} is unknown; use reviewer or adjudicator")
    password = _new_password(password)
    migrate(db)
    with transaction(db) as con:
        store.put_account(con, name, role, hash_password(password))
        store.revoke_sessions_of(con, name, now())
    return password


def _existing(con: Any, db: str | Path, name: str) -> str:
    name = name.strip()
    if store.account(con, name) is None:
        raise ConfigError(
            f"{db} has no reviewer {name!r}", hint="`labelagent reviewer list` shows who has one."
        )
    return name


def reset_password(db: str | Path, name: str, password: str | None = None) -> str:
    """A new password for an existing account; every session of the reviewer ends. Returns
    the password (generated when none is given)."""
    password = _new_password(password)
    migrate(db)
    with transaction(db) as con:
        name = _existing(con, db, name)
        store.set_password_hash(con, name, hash_password(password))
        store.revoke_sessions_of(con, name, now())
        queue_store.release_claims(con, name)
    return password


def remove_reviewer(db: str | Path, name: str) -> None:
    """Delete an account: its sessions end and the items it holds go back to the queue. Its past
    reviews stay; they are data."""
    migrate(db)
    with transaction(db) as con:
        name = _existing(con, db, name)
        store.delete_account(con, name)
        store.revoke_sessions_of(con, name, now())
        queue_store.release_claims(con, name)


def list_reviewers(db: str | Path) -> list[Reviewer]:
    with transaction(db) as con:
        found = store.accounts(con)
    return [Reviewer(name=a.name, role=a.role) for a in found]


def account(con: Any, name: str) -> Account | None:
    """The account, read inside the caller's transaction."""
    return store.account(con, name.strip())


def verified(found: Account | None, password: str) -> Reviewer | None:
    """The reviewer when the password is theirs. Exactly one scrypt check either way: against
    the account's hash, or against DUMMY_HASH when there is no such account."""
    if not check_password(password, found.password_hash if found else DUMMY_HASH) or found is None:
        return None
    return Reviewer(name=found.name, role=found.role)


def count_reviewers(db: str | Path) -> int:
    with transaction(db) as con:
        return store.count_accounts(con)
