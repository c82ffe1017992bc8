"""Final labels, with where each came from, to JSONL, CSV or Parquet.

A label (and the item's fields) is JSON in the log, and stays JSON: a JSON value in JSONL, JSON
text in CSV, and a string column with Parquet's JSON logical type in Parquet."""

from pathlib import Path

import duckdb
import pyarrow as pa

from labelagent.errors import ConfigError
from labelagent.store.address import postgres_url
from labelagent.store.db import DUCKDB_CONFIG, read_only, transaction
from labelagent.store.exports import COPY_OPTIONS, copy_staged, final_label_rows, stage_final_labels

FORMATS = tuple(COPY_OPTIONS)


def export(db: str | Path, out: str | Path, guideline: str | None = None) -> int:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError(
            f"{out}: cannot export to {out.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    with read_only(db), transaction(db) as con:
        rows = final_label_rows(con, guideline)
        if postgres_url(db) is None:
            _write(con, rows, out)
    if postgres_url(db) is not None:
        with duckdb.connect(config=DUCKDB_CONFIG) as local:
            _write(local, rows, out)
    return rows.num_rows


def _write(con: duckdb.DuckDBPyConnection, rows: pa.Table, out: Path) -> None:
    """Write `rows` to `out` by DuckDB's COPY: from the log's own connection, or from an
    in-memory DuckDB for a PostgreSQL log, so both write the same bytes."""
    stage_final_labels(con, rows, json_as_text=out.suffix.lower() == ".csv")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        copy_staged(con, out)
    except (OSError, duckdb.IOException) as e:
        raise ConfigError(
            f"{out}: cannot write the export: {getattr(e, 'strerror', None) or e}",
            hint="Give --out a path in a folder you can write to.",
        ) from None
