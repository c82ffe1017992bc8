"""Final labels, with where each came from, to JSONL, CSV or Parquet."""

from pathlib import Path

from agent.errors import ConfigError, DatabaseError
from agent.store.db import migrate, transaction

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
    if not Path(db).exists():
        raise DatabaseError(f"{db}: no such database")
    migrate(db)
    with transaction(db) as con:
        table = con.sql(EXPORT_QUERY, params=[guideline, guideline, guideline]).to_arrow_table()
        con.register("export_rows", table)
        if out.suffix.lower() == ".csv":
            con.execute(
                "CREATE TEMP VIEW export_view AS SELECT * REPLACE (CAST(label AS VARCHAR) AS label,"
                " CAST(fields AS VARCHAR) AS fields) FROM export_rows"
            )
        else:
            con.execute("CREATE TEMP VIEW export_view AS SELECT * FROM export_rows")
        out.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY export_view TO '{_quote(out)}' {options}")
        return table.num_rows


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
