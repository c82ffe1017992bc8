"""Finished items that could not be written to the database, kept in a file until they can.

When a labeling run cannot write to its database (another process holds it too long, the disk is
full), the items it has paid for go to `<db>.journal.jsonl`, one JSON line per item, fsynced;
if even that file cannot be written, to a file of the same name in the system's temporary
directory. The next command that opens the database for writing reads every journal back in one
transaction (idempotently: a decision already stored is skipped) and deletes it only after that
transaction has committed.
"""

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labelagent.errors import DatabaseError


def paths(db: str | Path) -> list[Path]:
    """Where a journal of `db` may be: beside it, else in the temporary directory."""
    resolved = Path(db).resolve()
    tag = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return [
        Path(f"{db}.journal.jsonl"),
        Path(tempfile.gettempdir()) / f"labelagent-{resolved.name}-{tag}.journal.jsonl",
    ]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An flock of its own, so that a reader never deletes lines a writer is adding."""
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append(db: str | Path, entries: list[dict[str, Any]]) -> Path:
    """Add the entries (one per item) to the first journal that can be written; returns it."""
    text = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()
    errors = []
    for path in paths(db):
        try:
            with _locked(path):
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, text)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return path
        except OSError as e:
            errors.append(f"{path}: {e.strerror or e}")
    raise DatabaseError(
        f"{db}: cannot write the database, nor a journal ({'; '.join(errors)}): "
        f"{len(entries)} finished items are lost",
        hint="Free disk space, then run the same command again.",
    )


def replay(db: str | Path) -> int:
    """Write every journaled item into the database, then delete the journal. Returns how many
    items were read back."""
    from labelagent.store.log import (
        write_entries,  # the log needs the database module, as this does
    )

    replayed = 0
    for path in paths(db):
        if not path.exists():
            continue
        with _locked(path):
            entries = _read(path)
            write_entries(db, entries, replayed=True)
            path.unlink()
        replayed += len(entries)
    return replayed


def _read(path: Path) -> list[dict[str, Any]]:
    """The journal's entries; a last line cut short (a run killed while writing it) is left out:
    its item was never confirmed written, so its run did not count it."""
    entries = []
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
        if not line.endswith(b"\n"):
            break
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise DatabaseError(
                f"{path}, line {number}: not a journal entry",
                hint="This file holds labeled items not yet in the database; fix or move it.",
            ) from None
    return entries
