"""The offline path: `labelagent demo` and `label` on the embedded llama.cpp model (slow: it loads
the model and scores every label option)."""

import json

import duckdb
import pytest
from conftest import GUIDELINES, write_jsonl
from typer.testing import CliRunner

from labelagent.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_demo_runs_the_whole_loop_offline_and_says_what_next(tmp_path):
    db = tmp_path / "demo.duckdb"
    result = runner.invoke(app, ["demo", "--db", str(db), "--items", "6"])
    assert result.exit_code == 0, result.output
    assert "6 labeled now" in " ".join(result.output.split())
    assert "labelagent export" in result.output
    con = duckdb.connect(str(db))
    routes = con.execute("SELECT route, count(*) FROM decisions GROUP BY 1").fetchall()
    models = con.execute("SELECT DISTINCT model FROM drafts").fetchall()
    con.close()
    assert sum(n for _, n in routes) == 6
    assert models == [("local:gemma-3-270m-q4_k_m.gguf",)]
    again = runner.invoke(app, ["demo", "--db", str(db), "--items", "6"])
    assert "0 labeled now, 6 already decided" in " ".join(again.output.split())


def test_label_classifies_on_the_embedded_model_by_default(tmp_path):
    items = write_jsonl(
        tmp_path / "tweets.jsonl",
        [
            {"id": "a", "text": "I love this phone, best purchase all year!"},
            {"id": "b", "text": "Worst service ever. Never again."},
            {"id": "c", "text": "The meeting is at 3pm in room 4."},
        ],
    )
    db = tmp_path / "log.duckdb"
    result = runner.invoke(
        app, ["label", str(items), "--guideline", str(GUIDELINES / "sentiment.md"), "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db))
    labels = con.execute("SELECT label FROM drafts WHERE error IS NULL").fetchall()
    failed = con.execute("SELECT count(*) FROM drafts WHERE error IS NOT NULL").fetchone()[0]
    con.close()
    assert failed == 0
    assert {json.loads(label) for (label,) in labels} <= {"positive", "negative", "neutral"}
