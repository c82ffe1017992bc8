"""The statements behind `labelagent import-labels`: imported labels go in as reviews (source
`import`), with their items (or placeholders for items without their fields)."""

from dataclasses import dataclass, fields

import pyarrow as pa
from duckdb import DuckDBPyConnection

from labelagent.store.db import Connection, changed_rows
from labelagent.store.log import fill_placeholders

# The rows of an import on PostgreSQL, as the temporary table that pyarrow gives DuckDB.
IMPORTED_TABLE = (
    "CREATE TEMP TABLE imported (item_id VARCHAR, fields JSON, content_hash VARCHAR,"
    " placeholder BOOLEAN, label JSON, source_key VARCHAR, confidence DOUBLE PRECISION)"
    " ON COMMIT DROP"
)


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
    con: Connection,
    rows: list[ImportedRow],
    dataset: str,
    guideline_hash: str,
    annotator: str,
    kind: str,
) -> Added:
    """Add the rows' items and reviews; a row stored already adds nothing."""
    _stage(con, rows)
    complete = "(SELECT * FROM imported WHERE NOT placeholder)"
    new_items = fill_placeholders(con, complete, dataset)
    new_items += changed_rows(
        con,
        "INSERT INTO items (item_id, dataset, fields, content_hash, placeholder)"
        " SELECT item_id, $1, fields, content_hash, placeholder FROM imported"
        " ON CONFLICT DO NOTHING",
        [dataset],
    )
    added = changed_rows(
        con,
        "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, blind, source,"
        " source_key, annotator_kind, confidence)"
        " SELECT item_id, $1, $2, label, 'import', true, 'import', source_key, $3,"
        " CAST(confidence AS DOUBLE PRECISION) FROM imported ON CONFLICT DO NOTHING",
        [guideline_hash, annotator, kind],
    )
    return Added(new_items, added)


def _stage(con: Connection, rows: list[ImportedRow]) -> None:
    """The rows as the temporary table `imported`: registered from pyarrow on DuckDB, copied in
    by COPY on PostgreSQL (dropped at commit)."""
    if isinstance(con, DuckDBPyConnection):
        con.register("imported", pa.Table.from_pylist([vars(row) for row in rows]))
        return
    con.execute(IMPORTED_TABLE)
    columns = ", ".join(field.name for field in fields(ImportedRow))
    with con.cursor().copy(f"COPY imported ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(vars(row).values()))


def imported_kinds(con: Connection, annotator: str) -> list[str]:
    """The annotator kinds (human, model) this annotator's imports carry."""
    rows = con.execute(
        "SELECT DISTINCT annotator_kind FROM reviews WHERE reviewer = $1 AND source = 'import'",
        [annotator],
    ).fetchall()
    return [kind for (kind,) in rows]


def model_decided(con: Connection, model: str) -> bool:
    """Whether a model of this name made a decision in the log."""
    return bool(con.execute("SELECT 1 FROM decisions WHERE model = $1 LIMIT 1", [model]).fetchall())
