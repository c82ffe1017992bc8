"""Final labels, with where each came from, to JSONL, CSV or Parquet.

A label (and the item's fields) is JSON in the log, and stays JSON: a JSON value in JSONL, JSON
text in CSV, and a string column with Parquet's JSON logical type in Parquet."""

from pathlib import Path

import duckdb

from agent.errors import ConfigError
from agent.store.db import read_only, transaction

FORMATS = {
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


def export(db: str | Path, out: str | Path, guideline: str | None = None) -> int:
    out = Path(out)
    options = FORMATS.get(out.suffix.lower())
    if options is None:
        raise ConfigError(
            f"{out}: cannot export to {out.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    with read_only(db), transaction(db) as con:
        table = con.sql(EXPORT_QUERY, params=[guideline, guideline, guideline]).to_arrow_table()
        con.register("export_rows", table)
        json_type = "VARCHAR" if out.suffix.lower() == ".csv" else "JSON"
        con.execute(
            f"CREATE TEMP VIEW export_view AS SELECT * REPLACE (CAST(label AS {json_type}) AS"
            f" label, CAST(fields AS {json_type}) AS fields) FROM export_rows"
        )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY export_view TO '{_quote(out)}' {options}")
        except (OSError, duckdb.IOException) as e:
            raise ConfigError(
                f"{out}: cannot write the export: {getattr(e, 'strerror', None) or e}",
                hint="Give --out a path in a folder you can write to.",
            ) from None
        return table.num_rows


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
