"""Final labels, with where each came from, to JSONL, CSV or Parquet.

A label (and the item's fields) is JSON in the log, and stays JSON: a JSON value in JSONL, JSON
text in CSV, and a string column with Parquet's JSON logical type in Parquet."""

from pathlib import Path

import duckdb

from agent.errors import ConfigError
from agent.store.db import read_only, transaction
from agent.store.exports import COPY_OPTIONS, copy_staged, stage_final_labels

FORMATS = tuple(COPY_OPTIONS)


def export(db: str | Path, out: str | Path, guideline: str | None = None) -> int:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError(
            f"{out}: cannot export to {out.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    with read_only(db), transaction(db) as con:
        rows = stage_final_labels(con, guideline, json_as_text=out.suffix.lower() == ".csv")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            copy_staged(con, out)
        except (OSError, duckdb.IOException) as e:
            raise ConfigError(
                f"{out}: cannot write the export: {getattr(e, 'strerror', None) or e}",
                hint="Give --out a path in a folder you can write to.",
            ) from None
        return rows
