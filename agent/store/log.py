"""What the pipeline reads from and writes to the DuckDB log. Every write is idempotent."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from labelagent.consistency import Vote
from labelagent.errors import InputError
from labelagent.guidelines import Guideline
from labelagent.inputs import ItemKeys, content_id
from labelagent.records import Decision, Item, Sample
from labelagent.store.db import Connection, changed_rows, transaction

_ID_CHECK_ROWS = 10_000  # ids checked against the log at a time


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _register(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]]) -> None:
    """The rows (dicts with the same keys) as the temporary table `name`, from one list per
    column. Not through pyarrow: it imports pandas, ~80 MB more for every labeling run."""
    columns = list(rows[0])
    select = ", ".join(f'unnest(${i}) AS "{column}"' for i, column in enumerate(columns, start=1))
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT {select}",
        [[row[column] for row in rows] for column in columns],
    )


def _copy_in(con: Connection, name: str, like: str, rows: list[dict[str, Any]]) -> None:
    """On PostgreSQL: the rows as the temporary table `name`, with the columns of table `like`,
    filled by COPY."""
    columns = list(rows[0])
    con.execute(f"CREATE TEMP TABLE {name} (LIKE {like} INCLUDING DEFAULTS)")
    with con.cursor().copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"DROP TABLE {name}")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record_guideline(db: str | Path, guideline: Guideline) -> None:
    with transaction(db) as con:
        con.execute(
            "INSERT INTO guidelines (guideline_hash, name, task, path, content)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            [
                guideline.content_hash,
                guideline.name,
                guideline.task,
                guideline.path,
                guideline.text,
            ],
        )


def check_ids(db: str | Path, source: str, keys: ItemKeys, n_items: int) -> None:
    """Refuse the input when one of its first `n_items` ids is stored already with other content,
    naming the line; it reads the log and writes nothing, so it runs before the items go in. A
    placeholder (an import's row without the item's fields) is no clash: its item gets these
    fields."""
    with transaction(db) as con:
        for start in range(0, n_items, _ID_CHECK_ROWS):
            _register(con, "new_items", keys.rows(start, min(n_items, start + _ID_CHECK_ROWS)))
            clash = con.execute(
                "SELECT n.item_id, n.line, i.dataset FROM new_items n JOIN items i USING (item_id)"
                " WHERE i.content_hash <> n.content_hash AND NOT i.placeholder"
                " ORDER BY n.line LIMIT 1"
            ).fetchall()
            _unregister(con, "new_items")
            if clash:
                item_id, line, dataset_there = clash[0]
                raise InputError(
                    f"{source}, line {line}: id {item_id!r} is already in the database "
                    f"(dataset {dataset_there!r}) with different content",
                    hint="Give items unique ids (--id-field), or use another --db.",
                )


def insert_items(db: str | Path, dataset: str, chunk: list[Item]) -> int:
    """Add a chunk of items whose ids `check_ids` passed; an id stored already keeps its row,
    and a placeholder gets the item's fields. Returns how many were new."""
    with transaction(db) as con:
        _register(con, "new_items", _item_rows(chunk))
        added = fill_placeholders(con, "new_items", dataset)
        added += con.execute(
            "INSERT INTO items (item_id, dataset, fields, content_hash)"
            " SELECT item_id, ?, fields, content_hash FROM new_items ON CONFLICT DO NOTHING",
            [dataset],
        ).fetchall()[0][0]
        _unregister(con, "new_items")
    return added


def fill_placeholders(con: Connection, table: str, dataset: str) -> int:
    """Give the placeholder items named in `table` (item_id, fields, content_hash) their fields;
    returns how many."""
    return changed_rows(
        con,
        "UPDATE items SET dataset = $1, fields = n.fields, content_hash = n.content_hash,"
        f" placeholder = false FROM {table} n"
        " WHERE items.item_id = n.item_id AND items.placeholder",
        [dataset],
    )


def _item_rows(chunk: list[Item]) -> list[dict[str, Any]]:
    return [
        {
            "item_id": item.item_id,
            "fields": _json(item.fields),
            "content_hash": content_id(item.fields),
            "line": item.line,
        }
        for item in chunk
    ]


def start_run(db: str | Path, run: dict[str, Any]) -> None:
    with transaction(db) as con:
        con.execute(
            "INSERT INTO runs (run_id, command, dataset, guideline_hash, prompt_hash, model, jury,"
            " settings, started_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
            [
                run["run_id"],
                run["command"],
                run.get("dataset"),
                run.get("guideline_hash"),
                run.get("prompt_hash"),
                run.get("model"),
                _json(run.get("jury", [])),
                _json(run.get("settings", {})),
                now(),
            ],
        )


def finish_run(db: str | Path, run_id: str, status: str) -> None:
    with transaction(db) as con:
        con.execute(
            "UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?", [now(), status, run_id]
        )


def pending_work(
    db: str | Path,
    ids: list[str],
    guideline_hash: str,
    prompt_hash: str,
    model: str,
    models: list[str],
) -> tuple[set[str], dict[str, dict[str, list[Sample]]]]:
    """For a chunk of item ids: those already decided under this configuration, and the drafts
    already stored for the others (so a resumed run pays for none of them again)."""
    with transaction(db) as con:
        # The ids: a temporary table on DuckDB; on PostgreSQL, whose read-only transactions
        # cannot make one, an unnested array.
        chunk, extra = "chunk", []
        if isinstance(con, duckdb.DuckDBPyConnection):
            _register(con, "chunk", [{"item_id": i} for i in ids])
        else:
            chunk, extra = "(SELECT unnest(CAST($4 AS VARCHAR[])) AS item_id) AS chunk", [ids]
        decided = {
            row[0]
            for row in con.execute(
                f"SELECT d.item_id FROM decisions d JOIN {chunk} USING (item_id)"
                " WHERE d.guideline_hash = $1 AND d.prompt_hash = $2 AND d.model = $3",
                [guideline_hash, prompt_hash, model, *extra],
            ).fetchall()
        }
        rows = con.execute(
            "SELECT item_id, model, sample_index, label, confidence, rationale, prompt_tokens,"
            " completion_tokens, cost_usd, latency_ms, error, cached_prompt_tokens"
            f" FROM drafts JOIN {chunk} USING (item_id)"
            " WHERE guideline_hash = $1 AND prompt_hash = $2"
            " AND model = ANY(CAST($3 AS VARCHAR[]))"
            " ORDER BY item_id, model, sample_index",
            [guideline_hash, prompt_hash, models, *extra],
        ).fetchall()
    stored: dict[str, dict[str, list[Sample]]] = {}
    for row in rows:
        if row[0] in decided:
            continue
        sample = Sample(
            model=row[1],
            sample_index=row[2],
            label=None if row[3] is None else json.loads(row[3]),
            confidence=row[4],
            rationale=row[5],
            prompt_tokens=row[6] or 0,
            completion_tokens=row[7] or 0,
            cost_usd=row[8] or 0.0,
            latency_ms=row[9] or 0.0,
            error=row[10],
            cached_prompt_tokens=row[11] or 0,
        )
        stored.setdefault(row[0], {}).setdefault(row[1], []).append(sample)
    return decided, stored


def write_entries(db: str | Path, entries: list[dict[str, Any]], replayed: bool = False) -> None:
    """Finished items in one transaction. An entry is one item: {"drafts": [draft_row...],
    "decision": decision_row or None, "retry": retry_row or None}; a decided item leaves
    `retries`. A decision replaces the item's current one for its guideline (the old one moves to
    decisions_history); `replayed` entries (from a journal) skip decisions already stored, so a
    journal can be read back twice. Drafts already stored are kept as they are."""
    # A journal written before drafts had cached_prompt_tokens has rows without it.
    drafts = [{"cached_prompt_tokens": 0, **row} for entry in entries for row in entry["drafts"]]
    decisions = [entry["decision"] for entry in entries if entry["decision"]]
    retries = [entry["retry"] for entry in entries if entry["retry"]]
    with transaction(db) as con:
        if replayed and decisions:
            stored = set(
                con.execute(
                    "SELECT item_id, guideline_hash, run_id FROM decisions"
                    " WHERE list_contains(?, run_id)",
                    [sorted({d["run_id"] for d in decisions})],
                ).fetchall()
            )
            decisions = [
                d
                for d in decisions
                if (d["item_id"], d["guideline_hash"], d["run_id"]) not in stored
            ]
        if drafts:
            # A journal written before example_ids has drafts without it.
            _register(con, "new_drafts", [{"example_ids": None, **row} for row in drafts])
            con.execute(
                "INSERT INTO drafts (item_id, guideline_hash, prompt_hash, model, sample_index,"
                " run_id, label, confidence, rationale, prompt_tokens, completion_tokens, cost_usd,"
                " latency_ms, error, cached_prompt_tokens, example_ids) SELECT item_id,"
                " guideline_hash, prompt_hash, model, sample_index, run_id, label, confidence,"
                " rationale, prompt_tokens, completion_tokens, cost_usd, latency_ms, error,"
                " cached_prompt_tokens, example_ids FROM new_drafts"
                " ON CONFLICT DO NOTHING"
            )
            _unregister(con, "new_drafts")
        if retries:
            _register(con, "new_retries", retries)
            con.execute(
                "INSERT OR REPLACE INTO retries (item_id, guideline_hash, prompt_hash, model,"
                " run_id, reason, error) SELECT item_id, guideline_hash, prompt_hash, model,"
                " run_id, reason, error FROM new_retries"
            )
            _unregister(con, "new_retries")
        if decisions:
            replace_decisions(con, decisions)
            con.execute(
                "DELETE FROM retries WHERE (item_id, guideline_hash) IN (SELECT (i, g) FROM"
                " (SELECT unnest(?) AS i, unnest(?) AS g))",
                [[d["item_id"] for d in decisions], [d["guideline_hash"] for d in decisions]],
            )


DECISION_COLUMNS = (
    "item_id, guideline_hash, run_id, model, prompt_hash, label, route, reasons, agreement,"
    " confidence, n_samples, n_failed, votes, disagreeing_models, rule, stage, stages_tried"
)


def replace_decisions(con: Connection, rows: list[dict[str, Any]]) -> None:
    """A row without a column of a later schema (a journal an older labelagent wrote) gets
    NULL there."""
    columns = DECISION_COLUMNS.split(", ")
    staged = [{c: row.get(c) for c in columns} for row in rows]
    if isinstance(con, duckdb.DuckDBPyConnection):
        _register(con, "new_decisions", staged)
    else:
        _copy_in(con, "new_decisions", "decisions", staged)
    con.execute(
        f"INSERT INTO decisions_history ({DECISION_COLUMNS}, decided_at)"
        f" SELECT {', '.join('d.' + c for c in DECISION_COLUMNS.split(', '))}, d.decided_at"
        " FROM decisions d JOIN new_decisions n USING (item_id, guideline_hash)"
    )
    con.execute(
        "DELETE FROM decisions WHERE (item_id, guideline_hash) IN"
        " (SELECT item_id, guideline_hash FROM new_decisions)"
    )
    con.execute(
        f"INSERT INTO decisions ({DECISION_COLUMNS}) SELECT {DECISION_COLUMNS} FROM new_decisions"
    )
    _unregister(con, "new_decisions")


def draft_row(
    item_id: str,
    guideline_hash: str,
    prompt_hash: str,
    run_id: str,
    s: Sample,
    example_ids: list[str] | None = None,
) -> dict:
    return {
        "item_id": item_id,
        "guideline_hash": guideline_hash,
        "prompt_hash": prompt_hash,
        "model": s.model,
        "sample_index": s.sample_index,
        "run_id": run_id,
        "label": _json(s.label) if s.ok else None,
        "confidence": s.confidence,
        "rationale": s.rationale,
        "prompt_tokens": s.prompt_tokens,
        "cached_prompt_tokens": s.cached_prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "cost_usd": s.cost_usd,
        "latency_ms": s.latency_ms,
        "error": s.error,
        "example_ids": None if example_ids is None else _json(example_ids),
    }


def decision_row(d: Decision) -> dict:
    v = d.verdict
    return {
        "item_id": d.item_id,
        "guideline_hash": d.guideline_hash,
        "run_id": d.run_id,
        "model": d.model,
        "prompt_hash": d.prompt_hash,
        "label": _json(v.label),
        "route": d.route,
        "reasons": _json(d.reasons),
        "agreement": v.agreement,
        "confidence": v.confidence,
        "n_samples": v.n_samples,
        "n_failed": v.n_failed,
        "votes": _json(v.votes),
        "disagreeing_models": _json(v.disagreeing_models),
        "rule": _json(d.rule),
        "stage": d.stage,
        "stages_tried": _json(d.stages_tried),
    }


def retry_row(
    item_id: str, guideline_hash: str, prompt_hash: str, model: str, run_id: str, s: Sample
) -> dict:
    return {
        "item_id": item_id,
        "guideline_hash": guideline_hash,
        "prompt_hash": prompt_hash,
        "model": model,
        "run_id": run_id,
        "reason": s.unanswered,
        "error": s.error,
    }


def spent(db: str | Path, guideline_hash: str, models: list[str]) -> float:
    """What every run so far paid for drafts of this guideline by these models."""
    with transaction(db) as con:
        return con.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM drafts"
            " WHERE guideline_hash = ? AND list_contains(?, model)",
            [guideline_hash, models],
        ).fetchone()[0]


def run_cost(db: str | Path, run_id: str) -> float:
    with transaction(db) as con:
        return con.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM drafts WHERE run_id = ?", [run_id]
        ).fetchone()[0]


def draft_votes(con: Connection, guideline_hash: str) -> dict[str, list[Vote]]:
    """For every decided item, the valid drafts its verdict was built from, as (whether the draft
    chose the decision's label, its stated confidence): a cascade's decision, only the drafts of
    the models of its stage. Labels are stored as canonical JSON, so equal labels are equal
    strings."""
    rows = con.execute(
        "SELECT d.item_id, CAST(x.label AS VARCHAR) = CAST(d.label AS VARCHAR), x.confidence,"
        " d.stage, CAST(d.stages_tried AS VARCHAR), x.model"
        " FROM decisions d JOIN drafts x USING (item_id, guideline_hash, prompt_hash)"
        " WHERE d.guideline_hash = $1 AND d.label IS NOT NULL AND x.error IS NULL",
        [guideline_hash],
    ).fetchall()
    votes: dict[str, list[Vote]] = {}
    for item_id, chose, confidence, stage, stages_tried, model in rows:
        if stage is None or model in json.loads(stages_tried)[stage]["models"]:
            votes.setdefault(item_id, []).append((bool(chose), confidence))
    return votes
