"""The log of provider batches (`label --batch`): a submission and its lines are written before
the batch is created, its batch id before it is polled, so a killed run's successor polls the
same batch instead of paying for it again."""

from dataclasses import dataclass
from pathlib import Path

from labelagent.store.db import transaction
from labelagent.store.log import now

LINE_COLUMNS = ("custom_id", "item_id", "model", "seed", "first_sample", "n")
OPEN = ("uploaded", "submitted")  # its answers are not in drafts yet: poll it, read it


@dataclass(frozen=True)
class Line:
    """One line of a batch: `n` samples of `model` for an item, asked with `seed`."""

    custom_id: str
    item_id: str
    model: str
    seed: int
    first_sample: int
    n: int


@dataclass
class Submission:
    submission_id: str
    model: str
    round: int
    input_file_id: str
    batch_id: str | None
    status: str
    lines: list[Line]


def record_upload(
    db: str | Path,
    submission: Submission,
    run_id: str,
    guideline_hash: str,
    prompt_hash: str,
    run_model: str,
) -> None:
    """The uploaded input file and every line it holds, before a batch is created from it."""
    with transaction(db) as con:
        con.execute(
            "INSERT INTO batches (submission_id, run_id, guideline_hash, prompt_hash, run_model,"
            " model, round, input_file_id, status, n_lines, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'uploaded', ?, ?)",
            [
                submission.submission_id,
                run_id,
                guideline_hash,
                prompt_hash,
                run_model,
                submission.model,
                submission.round,
                submission.input_file_id,
                len(submission.lines),
                now(),
            ],
        )
        columns = [[getattr(line, c) for line in submission.lines] for c in LINE_COLUMNS]
        con.execute(
            f"INSERT INTO batch_lines (submission_id, {', '.join(LINE_COLUMNS)}) SELECT $1,"
            f" {', '.join(f'unnest(${i})' for i in range(2, len(LINE_COLUMNS) + 2))}",
            [submission.submission_id, *columns],
        )


def record_batch(db: str | Path, submission_id: str, batch_id: str) -> None:
    with transaction(db) as con:
        con.execute(
            "UPDATE batches SET batch_id = ?, status = 'submitted' WHERE submission_id = ?",
            [batch_id, submission_id],
        )


def record_status(db: str | Path, submission_id: str, status: str, error: str | None) -> None:
    """Its final status, once its answers are in drafts: `consumed` (completed), or the
    provider's failed, expired or cancelled."""
    with transaction(db) as con:
        con.execute(
            "UPDATE batches SET status = ?, error = coalesce(?, error),"
            " finished_at = coalesce(finished_at, ?) WHERE submission_id = ?",
            [status, error, now(), submission_id],
        )


def open_submissions(
    db: str | Path, guideline_hash: str, prompt_hash: str, run_model: str
) -> list[Submission]:
    """This configuration's batches whose answers are not yet in drafts, oldest first."""
    with transaction(db) as con:
        batches = con.execute(
            "SELECT submission_id, model, round, input_file_id, batch_id, status FROM batches"
            " WHERE guideline_hash = ? AND prompt_hash = ? AND run_model = ?"
            " AND list_contains(?, status) ORDER BY created_at, submission_id",
            [guideline_hash, prompt_hash, run_model, list(OPEN)],
        ).fetchall()
        lines: dict[str, list[Line]] = {}
        for sid, *line in con.execute(
            "SELECT submission_id, custom_id, item_id, model, seed, first_sample, n"
            " FROM batch_lines WHERE list_contains(?, submission_id) ORDER BY custom_id",
            [[row[0] for row in batches]],
        ).fetchall():
            lines.setdefault(sid, []).append(Line(*line))
    return [Submission(*row, lines=lines.get(row[0], [])) for row in batches]
