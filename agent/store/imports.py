"""The statements behind `labelagent import-labels`: imported labels go in as reviews (source
`import`), with their items (or placeholders for items without their fields)."""

from dataclasses import dataclass

import pyarrow as pa
from duckdb import DuckDBPyConnection

from agent.store.log import fill_placeholders


@dataclass(frozen=True)
class ImportedRow:
    """One imported label; `fields` and `label` are JSON text."""

    item_id: str
    fields: str
    content_hash: str
    placeholder: bool  # the row lacks some of the guideline's fields
    label: str
    source_key: str
    confidence: float | None


@dataclass(frozen=True)
class Added:
    new_items: int  # items added or placeholders filled
    reviews: int


def insert_imported(
    con: DuckDBPyConnection,
    rows: list[ImportedRow],
    dataset: str,
    guideline_hash: str,
    annotator: str,
    kind: str,
) -> Added:
    """Add the rows' items and reviews; a row stored already adds nothing."""
    con.register("imported", pa.Table.from_pylist([vars(row) for row in rows]))
    complete = "(SELECT * FROM imported WHERE NOT placeholder)"
    new_items = fill_placeholders(con, complete, dataset)
    new_items += con.execute(
        "INSERT INTO items (item_id, dataset, fields, content_hash, placeholder)"
        " SELECT item_id, ?, fields, content_hash, placeholder FROM imported"
        " ON CONFLICT DO NOTHING",
        [dataset],
    ).fetchall()[0][0]
    added = con.execute(
        "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, blind, source,"
        " source_key, annotator_kind, confidence)"
        " SELECT item_id, ?, ?, label, 'import', true, 'import', source_key, ?,"
        " CAST(confidence AS DOUBLE) FROM imported ON CONFLICT DO NOTHING",
        [guideline_hash, annotator, kind],
    ).fetchall()[0][0]
    return Added(new_items, added)


def imported_kinds(con: DuckDBPyConnection, annotator: str) -> list[str]:
    """The annotator kinds (human, model) this annotator's imports carry."""
    rows = con.execute(
        "SELECT DISTINCT annotator_kind FROM reviews WHERE reviewer = ? AND source = 'import'",
        [annotator],
    ).fetchall()
    return [kind for (kind,) in rows]


def model_decided(con: DuckDBPyConnection, model: str) -> bool:
    """Whether a model of this name made a decision in the log."""
    return bool(con.execute("SELECT 1 FROM decisions WHERE model = ? LIMIT 1", [model]).fetchall())
