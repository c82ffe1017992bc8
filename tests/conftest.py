import json
import os
import sys
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest_plugins = ["postgres"]  # the postgres_server and postgres_url fixtures

REPO = Path(__file__).resolve().parent.parent
GUIDELINES = REPO / "guidelines"
SHARED_DATA = REPO.parent / "shared" / "data"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def rows(db: Path, sql: str) -> list[tuple]:
    """Read the log directly, as a user would with SQL."""
    con = duckdb.connect(str(db))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def label_command(db: Path, items: Path, url: str, concurrency: int) -> list[str]:
    """`labelagent label` in a fresh interpreter, against the simulated server at `url`."""
    return [
        sys.executable,
        "-m",
        "labelagent.cli",
        "label",
        str(items),
        "--guideline",
        str(GUIDELINES / "sentiment.md"),
        "--db",
        str(db),
        "--model",
        "openai/sim",
        "--api-base",
        url,
        "--mode",
        "json",
        "--concurrency",
        str(concurrency),
    ]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.duckdb"
