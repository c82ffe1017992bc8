"""The statements behind `labelagent export`: final labels with where each came from, written
to a file by DuckDB's COPY (of a PostgreSQL log: by an in-memory DuckDB, from rows read through
psycopg)."""

from pathlib import Path

import pyarrow as pa
from duckdb import DuckDBPyConnection

from labelagent.store.db import Connection

# COPY's options per file suffix.
COPY_OPTIONS = {
    ".jsonl": "(FORMAT json)",
    ".csv": "(FORMAT csv, HEADER)",
    ".parquet": "(FORMAT parquet)",
}

EXPORT_QUERY = """
SELECT f.item_id, g.name AS guideline, f.guideline_hash, f.label, f.source, f.reviewer,
       f.model, f.route, f.agreement, f.confidence, f.run_id, f.labeled_at, i.dataset,
       i.fields
FROM final_labels f
JOIN guidelines g USING (guideline_hash)
LEFT JOIN items i USING (item_id)
WHERE (CAST($1 AS VARCHAR) IS NULL OR g.name = $1 OR f.guideline_hash = $1)
ORDER BY g.name, f.item_id
"""
# The columns of EXPORT_QUERY as DuckDB hands them to Arrow (JSON as text).
EXPORT_SCHEMA = pa.schema(
    [
        *((name, pa.string()) for name in ("item_id", "guideline", "guideline_hash", "label")),
        *((name, pa.string()) for name in ("source", "reviewer", "model", "route")),
        ("agreement", pa.float64()),
        ("confidence", pa.float64()),
        ("run_id", pa.string()),
        ("labeled_at", pa.timestamp("us")),
        ("dataset", pa.string()),
        ("fields", pa.string()),
    ]
)


def final_label_rows(con: Connection, guideline: str | None) -> pa.Table:
    """The final labels of every guideline, or of the one with this name or hash. On PostgreSQL
    they are sorted here, so that its collation cannot order them differently from DuckDB's."""
    if isinstance(con, DuckDBPyConnection):
        return con.sql(EXPORT_QUERY, params=[guideline]).to_arrow_table()
    rows = con.execute(EXPORT_QUERY, [guideline]).fetchall()
    rows.sort(key=lambda row: (row[1], row[0], row[2]))
    return pa.Table.from_pylist(
        [dict(zip(EXPORT_SCHEMA.names, row, strict=True)) for row in rows], schema=EXPORT_SCHEMA
    )


def stage_final_labels(con: DuckDBPyConnection, table: pa.Table, json_as_text: bool) -> None:
    """Rows of `final_label_rows` as the temporary view `export_view` (label and fields as JSON,
    or as JSON text for CSV)."""
    json_type = "VARCHAR" if json_as_text else "JSON"
    con.register("export_rows", table)
    con.execute(
        f"CREATE TEMP VIEW export_view AS SELECT * REPLACE (CAST(label AS {json_type}) AS"
        f" label, CAST(fields AS {json_type}) AS fields) FROM export_rows"
    )


def copy_staged(con: DuckDBPyConnection, out: Path) -> None:
    """Write `export_view` to `out`, in the format its suffix names (a key of COPY_OPTIONS)."""
    quoted = str(out).replace("'", "''")
    con.execute(f"COPY export_view TO '{quoted}' {COPY_OPTIONS[out.suffix.lower()]}")
