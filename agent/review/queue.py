"""The escalation queue: which items a reviewer gets, leases on them, and what a review writes.

A reviewer claims a small batch in one transaction; a claim is a lease that expires, so two
reviewers never hold the same item and an abandoned item returns to the queue. DuckDB's file lock
makes the claim atomic across processes, the store's in-process lock across browser sessions.
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.calibration.rule import audit_draw
from agent.errors import ConfigError
from agent.guidelines import parse_guideline
from agent.records import Item
from agent.store.db import read_only, transaction
from agent.store.keys import audit_key
from agent.store.log import now
from agent.tasks import task_for

LABEL_ACTIONS = ("accept", "correct", "adjudicate", "import")
ACTIONS = ("accept", "correct", "skip", "flag", "adjudicate")
DEFAULT_LEASE = timedelta(minutes=10)

REVIEW_STATE = """
SELECT item_id, guideline_hash,
       count(DISTINCT reviewer) FILTER (WHERE action IN ('accept', 'correct', 'import'))
           AS n_labels,
       count(DISTINCT label) FILTER (WHERE action IN ('accept', 'correct', 'import')) AS n_distinct,
       bool_or(action = 'flag') AS flagged,
       bool_or(action = 'adjudicate') AS adjudicated,
       list(DISTINCT reviewer) AS reviewers
FROM reviews WHERE annotator_kind = 'human' GROUP BY ALL
"""

# What claim() needs to know of an item's reviews; leaner than REVIEW_STATE (no lists, no distinct
# labels). The parameter is the claiming reviewer.
CLAIM_STATE = """
SELECT item_id, guideline_hash,
       count(DISTINCT reviewer) FILTER (WHERE action IN ('accept', 'correct', 'import'))
           AS n_labels,
       bool_or(action IN ('flag', 'adjudicate')) AS closed,
       bool_or(reviewer = ?) AS reviewed_by_me
FROM reviews WHERE annotator_kind = 'human' GROUP BY ALL
"""

PRIORITY = """
(CASE WHEN list_contains(CAST(d.reasons AS VARCHAR[]), 'audit') THEN 2 ELSE 0 END
 + CASE WHEN list_contains(CAST(d.reasons AS VARCHAR[]), 'jury_disagreement') THEN 0.5 ELSE 0 END
 + 1 - coalesce(d.agreement, 0))
"""


class ClaimLost(ConfigError):
    """The reviewer's lease on an item ran out and another reviewer holds it now, or the
    reviewer already reviewed it (from another tab, or a retried request)."""


@dataclass
class QueueFilter:
    guideline: str | None = None  # name or hash
    label: str | None = None  # the model's label, as JSON text or a plain label name
    reason: str | None = None
    run_id: str | None = None
    text: str | None = None  # items with this in any field, in any case

    def sql(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.guideline:
            clauses.append("(g.name = ? OR d.guideline_hash = ?)")
            params += [self.guideline, self.guideline]
        if self.label:
            clauses.append("(CAST(d.label AS VARCHAR) = ? OR CAST(d.label AS VARCHAR) = ?)")
            params += [self.label, json.dumps(self.label)]
        if self.reason:
            clauses.append("list_contains(CAST(d.reasons AS VARCHAR[]), ?)")
            params.append(self.reason)
        if self.run_id:
            clauses.append("d.run_id = ?")
            params.append(self.run_id)
        if self.text:
            clauses.append(
                "d.item_id IN (SELECT item_id FROM items WHERE contains(lower(array_to_string("
                "json_extract_string(fields, '$.*'), chr(10))), lower(?)))"
            )
            params.append(self.text)
        return "".join(f" AND {c}" for c in clauses), params


@dataclass
class QueueItem:
    item_id: str
    guideline_hash: str
    guideline_name: str
    task: str
    fields: dict[str, Any]
    llm_label: Any
    agreement: float | None
    confidence: float | None
    votes: dict[str, int]
    reasons: list[str]
    disagreeing_models: list[str]
    blind: bool
    priority: float
    rationales: list[str] = field(default_factory=list)

    @property
    def why(self) -> str:
        """Why this item is here and why this early in the queue, in words."""
        parts = []
        if "audit" in self.reasons:
            parts.append("random audit of a label that would have been accepted (first in line)")
        if self.agreement is not None and "audit" not in self.reasons:
            parts.append(f"{self.agreement:.0%} of samples agreed")
        if self.disagreeing_models:
            parts.append(f"models disagreed: {', '.join(self.disagreeing_models)}")
        others = [r for r in self.reasons if r not in ("audit", "jury_disagreement")]
        if others:
            parts.append("reasons: " + ", ".join(r.replace("_", " ") for r in others))
        return f"priority {self.priority:.2f}: " + "; ".join(parts)


@dataclass(frozen=True)
class ReviewSettings:
    overlap: int = 1
    blind_share: float = 0.2


def get_settings(con: Any, guideline_hash: str) -> ReviewSettings:
    row = con.execute(
        "SELECT overlap, blind_share FROM review_settings WHERE guideline_hash = ?",
        [guideline_hash],
    ).fetchall()
    return ReviewSettings(*row[0]) if row else ReviewSettings()


def set_settings(db: str | Path, guideline: str, overlap: int, blind_share: float) -> int:
    """Set overlap and blind share for a guideline (name or hash); returns how many matched."""
    if overlap < 1 or not 0 <= blind_share <= 1:
        raise ConfigError("--overlap must be 1 or more and --blind-share between 0 and 1")
    with transaction(db) as con:
        hashes = [
            r[0]
            for r in con.execute(
                "SELECT guideline_hash FROM guidelines WHERE name = ? OR guideline_hash = ?",
                [guideline, guideline],
            ).fetchall()
        ]
        for ghash in hashes:
            con.execute(
                "INSERT OR REPLACE INTO review_settings (guideline_hash, overlap, blind_share)"
                " VALUES (?, ?, ?)",
                [ghash, overlap, blind_share],
            ).fetchall()
    return len(hashes)


def known_guideline(db: str | Path, guideline: str) -> bool:
    """Whether the log has a guideline of this name or hash (read without upgrading it)."""
    with read_only(db, any_version=True) as version, transaction(db) as con:
        return version > 0 and bool(
            con.execute(
                "SELECT 1 FROM guidelines WHERE name = ? OR guideline_hash = ? LIMIT 1",
                [guideline, guideline],
            ).fetchall()
        )


def is_blind(
    item_id: str, guideline_hash: str, reasons: list[str], blind_share: float, key: str
) -> bool:
    """Audit items always, and a fixed share of the others, are reviewed without the model's
    label, votes or rationale, so the human label stays independent. The share is drawn with the
    log's audit key, so whoever chose the item ids cannot tell which items are blind."""
    return "audit" in reasons or audit_draw(item_id, guideline_hash, key, seed=7919) < blind_share


def claim(
    db: str | Path,
    reviewer: str,
    size: int = 5,
    lease: timedelta = DEFAULT_LEASE,
    where: QueueFilter | None = None,
) -> list[QueueItem]:
    """Lease up to `size` items to `reviewer`, highest priority first (their own live claims
    come back first, so a reload does not lose them)."""
    moment = now()
    with transaction(db) as con:
        con.execute("DELETE FROM claims WHERE expires_at < ?", [moment]).fetchall()
        rows = _claimable(con, reviewer, size, where or QueueFilter())
        if rows:
            con.execute(
                "INSERT OR REPLACE INTO claims VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(rows)),
                [v for row in rows for v in (row[0], row[1], reviewer, moment, moment + lease)],
            ).fetchall()
        key = audit_key(con)
        items = [_queue_item(row, key) for row in rows]
        _attach_rationales(con, items)
    return items


def _claimable(con: Any, reviewer: str, size: int, where: QueueFilter) -> list[tuple]:
    """The next `size` items for `reviewer`, as rows for `_queue_item`. The order is decided on
    the decisions' small columns first; only the chosen rows are joined with the items' text
    (each claim opens the file afresh, so every column read is read from disk)."""
    filters, params = where.sql()
    return con.execute(
        f"""
        WITH state AS ({CLAIM_STATE}),
        chosen AS (
            SELECT d.item_id, d.guideline_hash, {PRIORITY} AS priority,
                   coalesce(s.overlap, 1) AS overlap, coalesce(s.blind_share, 0.2) AS blind_share,
                   c.reviewer = ? AS mine
            FROM decisions d
            JOIN guidelines g USING (guideline_hash)
            LEFT JOIN review_settings s USING (guideline_hash)
            LEFT JOIN state r USING (item_id, guideline_hash)
            LEFT JOIN claims c USING (item_id, guideline_hash)
            WHERE d.route = 'escalated'
              AND coalesce(r.n_labels, 0) < coalesce(s.overlap, 1)
              AND NOT coalesce(r.closed, false) AND NOT coalesce(r.reviewed_by_me, false)
              AND (c.reviewer IS NULL OR c.reviewer = ?)
              {filters}
            ORDER BY mine DESC NULLS LAST, priority DESC, d.item_id
            LIMIT ?
        )
        SELECT d.item_id, d.guideline_hash, g.name, g.task, i.fields, d.label, d.agreement,
               d.confidence, d.votes, d.reasons, d.disagreeing_models, k.priority, k.overlap,
               k.blind_share, k.mine
        FROM chosen k
        JOIN decisions d USING (item_id, guideline_hash)
        JOIN guidelines g USING (guideline_hash)
        JOIN items i USING (item_id)
        ORDER BY k.mine DESC NULLS LAST, k.priority DESC, d.item_id
        """,
        [reviewer, reviewer, reviewer, *params, size],
    ).fetchall()


def _queue_item(row: tuple, key: str) -> QueueItem:
    reasons = json.loads(row[9])
    return QueueItem(
        item_id=row[0],
        guideline_hash=row[1],
        guideline_name=row[2],
        task=row[3],
        fields=json.loads(row[4]),
        llm_label=None if row[5] is None else json.loads(row[5]),
        agreement=row[6],
        confidence=row[7],
        votes=json.loads(row[8]),
        reasons=reasons,
        disagreeing_models=json.loads(row[10]),
        priority=row[11],
        blind=is_blind(row[0], row[1], reasons, row[13], key),
    )


def _attach_rationales(con: Any, items: list[QueueItem], most: int = 5) -> None:
    """Up to `most` distinct rationales per item (none for a blind item), in one query."""
    shown = {(i.item_id, i.guideline_hash): i for i in items if not i.blind}
    if not shown:
        return
    marks = ", ".join(["?"] * len(shown))
    rows = con.execute(
        "SELECT item_id, guideline_hash, model, rationale, min(sample_index) AS first"
        f" FROM drafts WHERE item_id IN ({marks}) AND rationale IS NOT NULL AND rationale <> ''"
        " GROUP BY ALL ORDER BY item_id, guideline_hash, first, model",
        [item_id for item_id, _ in shown],
    ).fetchall()
    for item_id, guideline_hash, model, rationale, _ in rows:
        item = shown.get((item_id, guideline_hash))
        if item is not None and len(item.rationales) < most:
            item.rationales.append(f"{model}: {rationale}")


def release(db: str | Path, reviewer: str) -> None:
    """Give back every item the reviewer holds (sign-out)."""
    with transaction(db) as con:
        con.execute("DELETE FROM claims WHERE reviewer = ?", [reviewer]).fetchall()


def submit(
    db: str | Path,
    reviewer: str,
    item: QueueItem,
    action: str,
    label: Any = None,
    note: str = "",
    seconds_on_screen: float | None = None,
) -> None:
    """Record one review and release the item. A label is checked against the guideline."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown review action {action!r}")
    if action in LABEL_ACTIONS and label is None:
        raise ConfigError(f"{action} needs a label")
    with transaction(db) as con:
        if action in LABEL_ACTIONS:
            label = _checked_label(con, item, label)
        if action != "adjudicate" and _already_reviewed(con, reviewer, item):
            raise ClaimLost(f"you already reviewed {item.item_id}; the second review was not saved")
        if action != "adjudicate":
            _check_claim(con, reviewer, item)
        con.execute(
            "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, note, blind,"
            " seconds_on_screen, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'review_ui')",
            [
                item.item_id,
                item.guideline_hash,
                reviewer,
                None if label is None or action not in LABEL_ACTIONS else json.dumps(label),
                action,
                note or None,
                item.blind,
                seconds_on_screen,
            ],
        ).fetchall()
        con.execute(
            "DELETE FROM claims WHERE item_id = ? AND guideline_hash = ?",
            [item.item_id, item.guideline_hash],
        ).fetchall()


def _check_claim(con: Any, reviewer: str, item: QueueItem) -> None:
    """A review needs the reviewer's claim on the item: once a lease has expired, another reviewer
    may have taken the item and reviewed it already."""
    holder = con.execute(
        "SELECT reviewer FROM claims WHERE item_id = ? AND guideline_hash = ?",
        [item.item_id, item.guideline_hash],
    ).fetchall()
    if not holder:
        raise ClaimLost(
            f"your claim on {item.item_id} expired and the item went back to the queue; "
            "the review was not saved"
        )
    if holder[0][0] != reviewer:
        raise ClaimLost(
            f"your claim on {item.item_id} expired and {holder[0][0]} has it now; "
            "the review was not saved"
        )


def _already_reviewed(con: Any, reviewer: str, item: QueueItem) -> bool:
    return bool(
        con.execute(
            "SELECT 1 FROM reviews WHERE item_id = ? AND guideline_hash = ? AND reviewer = ?"
            " AND action <> 'adjudicate' LIMIT 1",
            [item.item_id, item.guideline_hash, reviewer],
        ).fetchall()
    )


def _checked_label(con: Any, item: QueueItem, label: Any) -> Any:
    content = con.execute(
        "SELECT content FROM guidelines WHERE guideline_hash = ?", [item.guideline_hash]
    ).fetchall()[0][0]
    guideline = parse_guideline(content, item.guideline_name)
    try:
        return task_for(guideline).normalize(
            guideline, label, Item(item_id=item.item_id, fields=item.fields)
        )
    except ValueError as e:
        raise ConfigError(f"that label does not fit the guideline: {e}") from None
