"""The statements behind acceptance rules: calibrations (`calibrations`), and the decisions a
new rule routes again (read here, written back with `log.replace_decisions`)."""

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from labelagent.store.log import DECISION_COLUMNS


@dataclass(frozen=True)
class StoredDecision:
    """A row of `decisions` as stored: label, reasons, votes, disagreeing_models, rule and
    stages_tried are JSON text. Its fields are DECISION_COLUMNS, so `vars()` of one (with
    changes) is a row `replace_decisions` writes."""

    item_id: str
    guideline_hash: str
    run_id: str
    model: str
    prompt_hash: str
    label: str | None
    route: str
    reasons: str
    agreement: float | None
    confidence: float | None
    n_samples: int
    n_failed: int
    votes: str
    disagreeing_models: str
    rule: str
    stage: int | None
    stages_tried: str | None


@dataclass(frozen=True)
class Calibration:
    calibration_id: str
    rule: str  # JSON
    created_at: datetime


def decisions_of(con: DuckDBPyConnection, guideline_hash: str, model: str) -> list[StoredDecision]:
    """The current decisions of a model (or cascade key) under a guideline."""
    rows = con.execute(
        f"SELECT {DECISION_COLUMNS} FROM decisions WHERE guideline_hash = $1 AND model = $2",
        [guideline_hash, model],
    ).fetchall()
    return [StoredDecision(*row) for row in rows]


def add_calibration(
    con: DuckDBPyConnection,
    calibration_id: str,
    guideline_hash: str,
    model: str,
    rule: str,
    details: str,
    at: datetime,
) -> None:
    """Keep a rule and the data it came from (both JSON text)."""
    con.execute(
        "INSERT INTO calibrations (calibration_id, guideline_hash, model, rule, details,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        [calibration_id, guideline_hash, model, rule, details, at],
    )


def latest_calibration(
    con: DuckDBPyConnection, guideline_hash: str, model: str
) -> Calibration | None:
    rows = con.execute(
        "SELECT calibration_id, rule, created_at FROM calibrations"
        " WHERE guideline_hash = $1 AND model = $2 ORDER BY created_at DESC LIMIT 1",
        [guideline_hash, model],
    ).fetchall()
    return Calibration(*rows[0]) if rows else None
