"""The statements behind the review queue: claims, reviews, settings, adjudication cases."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from duckdb import DuckDBPyConnection

# What a claim needs to know of an item's reviews; leaner than REVIEW_STATE (no lists, no distinct
# labels). The parameter is the claiming reviewer.
CLAIM_STATE = """
SELECT item_id, guideline_hash,
       count(DISTINCT reviewer) FILTER (WHERE action IN ('accept', 'correct', 'import'))
           AS n_labels,
       bool_or(action IN ('flag', 'adjudicate')) AS closed,
       bool_or(reviewer = ?) AS reviewed_by_me
FROM reviews WHERE annotator_kind = 'human' GROUP BY ALL
"""

# Escalated items that still need a label from people, with the claim on each (c) and its review
# state (r, from CLAIM_STATE as `state`): what claim and waiting both count from.
OPEN_ITEMS = """
FROM decisions d
JOIN guidelines g USING (guideline_hash)
LEFT JOIN review_settings s USING (guideline_hash)
LEFT JOIN state r USING (item_id, guideline_hash)
LEFT JOIN claims c USING (item_id, guideline_hash)
WHERE d.route = 'escalated'
  AND coalesce(r.n_labels, 0) < coalesce(s.overlap, 1)
  AND NOT coalesce(r.closed, false) AND NOT coalesce(r.reviewed_by_me, false)
"""

PRIORITY = """
(CASE WHEN list_contains(CAST(d.reasons AS VARCHAR[]), 'audit') THEN 2 ELSE 0 END
 + CASE WHEN list_contains(CAST(d.reasons AS VARCHAR[]), 'jury_disagreement') THEN 0.5 ELSE 0 END
 + 1 - coalesce(d.agreement, 0))
"""

# The columns `escalated` reads, from decisions d, guidelines g and items i.
ESCALATED_COLUMNS = """d.item_id, d.guideline_hash, g.name, g.task, i.fields, d.label,
d.agreement, d.confidence, d.votes, d.reasons, d.disagreeing_models, d.stages_tried"""
ESCALATED_WIDTH = ESCALATED_COLUMNS.count(",") + 1


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


@dataclass(frozen=True)
class Escalated:
    """An escalated decision with its item and guideline, as a reviewer gets it."""

    item_id: str
    guideline_hash: str
    guideline_name: str
    task: str
    fields: dict[str, Any]
    label: Any
    agreement: float | None
    confidence: float | None
    votes: dict[str, int]
    reasons: list[str]
    disagreeing_models: list[str]
    stages_tried: list[
        dict[str, Any]
    ]  # a cascade's stages (labelagent.cascade.tried_stage); else []


@dataclass(frozen=True)
class Claimable:
    decision: Escalated
    priority: float
    blind_share: float


@dataclass(frozen=True)
class Rationale:
    item_id: str
    guideline_hash: str
    model: str
    rationale: str


@dataclass(frozen=True)
class Waiting:
    waiting: int  # what a claim could still give the reviewer, whatever the filters
    matching: int  # the same among the items the filters let through


@dataclass
class FilterOptions:
    guidelines: list[str]
    labels: list[str]  # the model's labels as JSON text
    reasons: list[str]
    runs: list[str]


def escalated(row: tuple[Any, ...]) -> Escalated:
    return Escalated(
        item_id=row[0],
        guideline_hash=row[1],
        guideline_name=row[2],
        task=row[3],
        fields=json.loads(row[4]),
        label=None if row[5] is None else json.loads(row[5]),
        agreement=row[6],
        confidence=row[7],
        votes=json.loads(row[8]),
        reasons=json.loads(row[9]),
        disagreeing_models=json.loads(row[10]),
        stages_tried=json.loads(row[11] or "[]"),
    )


def guideline_hashes(con: DuckDBPyConnection, guideline: str) -> list[str]:
    """The hashes of the guidelines with this name or hash."""
    rows = con.execute(
        "SELECT guideline_hash FROM guidelines WHERE name = ? OR guideline_hash = ?",
        [guideline, guideline],
    ).fetchall()
    return [hash_ for (hash_,) in rows]


def put_settings(
    con: DuckDBPyConnection, guideline_hash: str, overlap: int, blind_share: float
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO review_settings (guideline_hash, overlap, blind_share)"
        " VALUES (?, ?, ?)",
        [guideline_hash, overlap, blind_share],
    ).fetchall()


def guideline_content(con: DuckDBPyConnection, guideline_hash: str) -> str | None:
    rows = con.execute(
        "SELECT content FROM guidelines WHERE guideline_hash = ?", [guideline_hash]
    ).fetchall()
    return rows[0][0] if rows else None


def drop_expired_claims(con: DuckDBPyConnection, moment: datetime) -> None:
    con.execute("DELETE FROM claims WHERE expires_at < ?", [moment]).fetchall()


def claimable(
    con: DuckDBPyConnection, reviewer: str, size: int, where: QueueFilter
) -> list[Claimable]:
    """The next `size` items for `reviewer`, their own live claims first. The order is decided
    on the decisions' small columns first; only the chosen rows are joined with the items' text
    (each claim opens the file afresh, so every column read is read from disk)."""
    filters, params = where.sql()
    rows = con.execute(
        f"""
        WITH state AS ({CLAIM_STATE}),
        chosen AS (
            SELECT d.item_id, d.guideline_hash, {PRIORITY} AS priority,
                   coalesce(s.overlap, 1) AS overlap, coalesce(s.blind_share, 0.2) AS blind_share,
                   c.reviewer = ? AS mine
            {OPEN_ITEMS}
              AND (c.reviewer IS NULL OR c.reviewer = ?)
              {filters}
            ORDER BY mine DESC NULLS LAST, priority DESC, d.item_id
            LIMIT ?
        )
        SELECT {ESCALATED_COLUMNS}, k.priority, k.blind_share
        FROM chosen k
        JOIN decisions d USING (item_id, guideline_hash)
        JOIN guidelines g USING (guideline_hash)
        JOIN items i USING (item_id)
        ORDER BY k.mine DESC NULLS LAST, k.priority DESC, d.item_id
        """,
        [reviewer, reviewer, reviewer, *params, size],
    ).fetchall()
    n = ESCALATED_WIDTH
    return [Claimable(escalated(row[:n]), priority=row[n], blind_share=row[n + 1]) for row in rows]


def put_claims(
    con: DuckDBPyConnection,
    keys: list[tuple[str, str]],
    reviewer: str,
    moment: datetime,
    lease: timedelta,
) -> None:
    """Claim each (item_id, guideline_hash) for `reviewer` from `moment` for `lease`."""
    if keys:
        con.execute(
            "INSERT OR REPLACE INTO claims VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * len(keys)),
            [v for key in keys for v in (*key, reviewer, moment, moment + lease)],
        ).fetchall()


def rationales(con: DuckDBPyConnection, item_ids: list[str]) -> list[Rationale]:
    """The drafts' distinct non-empty rationales for these items, earliest sample first."""
    if not item_ids:
        return []
    marks = ", ".join(["?"] * len(item_ids))
    rows = con.execute(
        "SELECT item_id, guideline_hash, model, rationale, min(sample_index) AS first"
        f" FROM drafts WHERE item_id IN ({marks}) AND rationale IS NOT NULL AND rationale <> ''"
        " GROUP BY ALL ORDER BY item_id, guideline_hash, first, model",
        item_ids,
    ).fetchall()
    return [Rationale(*row[:4]) for row in rows]


def release_claims(con: DuckDBPyConnection, reviewer: str) -> None:
    con.execute("DELETE FROM claims WHERE reviewer = $1", [reviewer])


def release_item(con: DuckDBPyConnection, item_id: str, guideline_hash: str) -> None:
    con.execute(
        "DELETE FROM claims WHERE item_id = ? AND guideline_hash = ?", [item_id, guideline_hash]
    ).fetchall()


def claim_holder(con: DuckDBPyConnection, item_id: str, guideline_hash: str) -> str | None:
    rows = con.execute(
        "SELECT reviewer FROM claims WHERE item_id = ? AND guideline_hash = ?",
        [item_id, guideline_hash],
    ).fetchall()
    return rows[0][0] if rows else None


def has_reviewed(con: DuckDBPyConnection, reviewer: str, item_id: str, guideline_hash: str) -> bool:
    """Whether `reviewer` has a review of the item other than an adjudication."""
    return bool(
        con.execute(
            "SELECT 1 FROM reviews WHERE item_id = ? AND guideline_hash = ? AND reviewer = ?"
            " AND action <> 'adjudicate' LIMIT 1",
            [item_id, guideline_hash, reviewer],
        ).fetchall()
    )


def add_review(
    con: DuckDBPyConnection,
    item_id: str,
    guideline_hash: str,
    reviewer: str,
    label: Any,
    action: str,
    note: str | None,
    blind: bool,
    seconds_on_screen: float | None,
) -> None:
    """One review made in the app; `label` is stored as JSON (None stays NULL)."""
    con.execute(
        "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, note, blind,"
        " seconds_on_screen, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'review_ui')",
        [
            item_id,
            guideline_hash,
            reviewer,
            None if label is None else json.dumps(label),
            action,
            note,
            blind,
            seconds_on_screen,
        ],
    ).fetchall()


def waiting(
    con: DuckDBPyConnection, reviewer: str, where: QueueFilter, moment: datetime
) -> Waiting:
    """What a claim could still give `reviewer` at `moment`, with and without the filters."""
    filters, params = where.sql()
    all_, matching = con.execute(
        f"""
        WITH state AS ({CLAIM_STATE})
        SELECT count(*), count(*) FILTER (WHERE true {filters})
        {OPEN_ITEMS}
          AND (c.reviewer IS NULL OR c.reviewer = ? OR c.expires_at < ?)
        """,
        [reviewer, *params, reviewer, moment],
    ).fetchall()[0]
    return Waiting(waiting=all_, matching=matching)


def decided_today(con: DuckDBPyConnection, reviewer: str) -> int:
    """The reviewer's decisions in the app since midnight (skips not counted)."""
    return con.execute(
        "SELECT count(*) FROM reviews WHERE reviewer = ? AND source = 'review_ui'"
        " AND action <> 'skip' AND created_at >= CAST(current_date AS TIMESTAMP)",
        [reviewer],
    ).fetchall()[0][0]


def filter_options(con: DuckDBPyConnection) -> FilterOptions:
    """The values the queue's filters offer, from the escalated decisions."""

    def column(sql: str) -> list[str]:
        return [value for (value,) in con.execute(sql).fetchall() if value is not None]

    escalated = "FROM decisions d JOIN guidelines g USING (guideline_hash)"
    escalated += " WHERE d.route = 'escalated'"
    return FilterOptions(
        guidelines=column(f"SELECT DISTINCT g.name {escalated} ORDER BY 1"),
        labels=column(f"SELECT DISTINCT CAST(d.label AS VARCHAR) {escalated} ORDER BY 1"),
        reasons=column(
            "SELECT DISTINCT unnest(CAST(d.reasons AS VARCHAR[])) FROM decisions d"
            " WHERE d.route = 'escalated' ORDER BY 1"
        ),
        runs=column(f"SELECT DISTINCT d.run_id {escalated} ORDER BY 1"),
    )
