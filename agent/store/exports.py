"""The statements behind `labelagent export`: final labels with where each came from, written
to a file by DuckDB's COPY."""

from pathlib import Path

from duckdb import DuckDBPyConnection

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
WHERE (? IS NULL OR g.name = ? OR f.guideline_hash = ?)
ORDER BY g.name, f.item_id
"""


def stage_final_labels(con: DuckDBPyConnection, guideline: str | None, json_as_text: bool) -> int:
    """The final labels of every guideline, or of the one with this name or hash, as the
    temporary view `export_view` (label and fields as JSON, or as JSON text for CSV); returns
    how many."""
    json_type = "VARCHAR" if json_as_text else "JSON"
    table = con.sql(EXPORT_QUERY, params=[guideline, guideline, guideline]).to_arrow_table()
    con.register("export_rows", table)
    con.execute(
        f"CREATE TEMP VIEW export_view AS SELECT * REPLACE (CAST(label AS {json_type}) AS"
        f" label, CAST(fields AS {json_type}) AS fields) FROM export_rows"
    )
    return table.num_rows


def copy_staged(con: DuckDBPyConnection, out: Path) -> None:
    """Write `export_view` to `out`, in the format its suffix names (a key of COPY_OPTIONS)."""
    quoted = str(out).replace("'", "''")
    con.execute(f"COPY export_view TO '{quoted}' {COPY_OPTIONS[out.suffix.lower()]}")
