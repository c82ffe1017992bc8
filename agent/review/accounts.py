"""Reviewer accounts with scrypt-hashed secrets, stored in the database."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ConfigError
from agent.store.db import migrate, transaction

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


def add_reviewer(db: str | Path, name: str, role: str, password: str | None = None) -> str:
    """Create or reset an account; returns the password (generated when none is given)."""
    name = name.strip()
    if not name:
        raise ConfigError("a reviewer needs a name")
    if role not in ROLES:
        raise ConfigError(f"--role {role!r} is unknown; use reviewer or adjudicator")
    password = password or secrets.token_urlsafe(12)
    if len(password) < 8:
        raise ConfigError("a password needs at least 8 characters")
    migrate(db)
    with transaction(db) as con:
        con.execute(
            "INSERT OR REPLACE INTO reviewers (name, role, password_hash) VALUES (?, ?, ?)",
            [name, role, hash_password(password)],
        ).fetchall()
    return password


def authenticate(db: str | Path, name: str, password: str) -> Reviewer | None:
    with transaction(db) as con:
        row = con.execute(
            "SELECT name, role, password_hash FROM reviewers WHERE name = ?", [name.strip()]
        ).fetchall()
    if not row or not check_password(password, row[0][2]):
        return None
    return Reviewer(name=row[0][0], role=row[0][1])


def count_reviewers(db: str | Path) -> int:
    with transaction(db) as con:
        return con.execute("SELECT count(*) FROM reviewers").fetchall()[0][0]
