"""Students in the log: the trusted labels they learn from, and the trained models themselves
(table `students`), with the items each was trained on."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from labelagent.errors import ConfigError
from labelagent.store.db import read_only, transaction

PREFIX = "student:"
STUDENTS_SINCE = 6  # the schema version that added the students table


@dataclass(frozen=True)
class TrainingRow:
    item_id: str
    fields: dict[str, Any]
    label: str
    source: str  # human | auto


@dataclass(frozen=True)
class StoredStudent:
    student_id: str
    guideline_hash: str
    task: str
    labels: list[str]
    n_train: int
    include_auto: bool
    training: list[list[str]]  # [item_id, label, source]
    params: bytes
    params_sha256: str
    settings: dict[str, Any]
    created_at: str = ""


def trusted_rows(db: str | Path, guideline_hash: str, include_auto: bool) -> list[TrainingRow]:
    """Every item's final human label (a review or an import of a person, never of a model), and
    with `include_auto` the auto-accepted labels of models that are not students, by item id."""
    with transaction(db) as con:
        found = con.execute(
            "SELECT f.item_id, i.fields, CAST(f.label AS VARCHAR), f.source"
            " FROM final_labels f JOIN items i USING (item_id)"
            " WHERE f.guideline_hash = ? AND (f.source = 'human'"
            "  OR (? AND f.source = 'llm' AND NOT starts_with(f.model, ?)))"
            " ORDER BY f.item_id",
            [guideline_hash, include_auto, PREFIX],
        ).fetchall()
    return [
        TrainingRow(
            item_id,
            json.loads(fields),
            json.loads(label),
            "human" if source == "human" else "auto",
        )
        for item_id, fields, label, source in found
    ]


def save(db: str | Path, student: StoredStudent) -> bool:
    """Store the student; False when the same student (same id) is there already."""
    with transaction(db) as con:
        added = con.execute(
            "INSERT INTO students (student_id, guideline_hash, task, labels, n_train,"
            " include_auto, training, params, params_sha256, settings)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                student.student_id,
                student.guideline_hash,
                student.task,
                json.dumps(student.labels),
                student.n_train,
                student.include_auto,
                json.dumps(student.training, ensure_ascii=False),
                student.params,
                student.params_sha256,
                json.dumps(student.settings),
            ],
        ).fetchall()[0][0]
    return bool(added)


COLUMNS = (
    "student_id, guideline_hash, task, CAST(labels AS VARCHAR), n_train, include_auto,"
    " CAST(training AS VARCHAR), params, params_sha256, CAST(settings AS VARCHAR),"
    " strftime(created_at, '%Y-%m-%d %H:%M:%S')"
)


def _stored(row: tuple) -> StoredStudent:
    sid, ghash, task, labels, n, auto, training, params, sha, settings, created = row
    return StoredStudent(
        sid,
        ghash,
        task,
        json.loads(labels),
        n,
        bool(auto),
        json.loads(training),
        bytes(params),
        sha,
        json.loads(settings),
        created,
    )


def load(db: str | Path, guideline_hash: str, student_id: str | None = None) -> StoredStudent:
    """A named student, or the newest one trained for the guideline. Reads without upgrading the
    log: one older than the students table has none."""
    with read_only(db, any_version=True) as version, transaction(db) as con:
        if version < STUDENTS_SINCE:
            rows = []
        elif student_id is None:
            rows = con.execute(
                f"SELECT {COLUMNS} FROM students WHERE guideline_hash = $1"
                " ORDER BY created_at DESC, student_id LIMIT 1",
                [guideline_hash],
            ).fetchall()
        else:
            rows = con.execute(
                f"SELECT {COLUMNS} FROM students WHERE student_id = $1", [student_id]
            ).fetchall()
    if not rows:
        which = student_id or "no student for this guideline"
        raise ConfigError(
            f"{db}: {which} is not in the log",
            hint="Train one first: labelagent student train --guideline FILE --db LOG",
        )
    return _stored(rows[0])


def list_students(db: str | Path) -> list[StoredStudent]:
    with transaction(db) as con:
        rows = con.execute(f"SELECT {COLUMNS} FROM students ORDER BY created_at DESC").fetchall()
    return [_stored(row) for row in rows]


def trained_items(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Student id -> the items it was trained on (their labels are no evidence about it)."""
    rows = con.execute("SELECT student_id, CAST(training AS VARCHAR) FROM students").fetchall()
    return {sid: {row[0] for row in json.loads(training)} for sid, training in rows}
