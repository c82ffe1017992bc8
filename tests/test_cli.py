"""The command line as a user meets it: bad inputs name the file and line and change nothing."""

import json
from pathlib import Path

import duckdb
import pytest
from conftest import GUIDELINES, REPO, write_jsonl
from typer.testing import CliRunner

from labelagent.cli import app
from labelagent.guidelines import load_guideline
from labelagent.store.schema_doc import generate

runner = CliRunner()
SENTIMENT = str(GUIDELINES / "sentiment.md")


class Run:
    """What a command printed (with line wrapping undone) and its exit code."""

    def __init__(self, *args: object) -> None:
        result = runner.invoke(app, [str(a) for a in args])
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())
        self.raw = result.output


run = Run


def snapshot(db: Path) -> list:
    con = duckdb.connect(str(db))
    try:
        return [
            con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("items", "drafts", "decisions", "runs", "reviews")
        ]
    finally:
        con.close()


@pytest.fixture
def labeled_db(tmp_path: Path) -> Path:
    """A database with three imported gold labels, made through the CLI."""
    db = tmp_path / "log.duckdb"
    gold = write_jsonl(
        tmp_path / "gold.jsonl",
        [{"id": f"g{i}", "text": f"t{i}", "label": "positive"} for i in range(3)],
    )
    result = run("import-labels", gold, "--annotator", "gold", "--guideline", SENTIMENT, "--db", db)
    assert result.exit_code == 0, result.output
    return db


BAD_INPUTS = {
    "empty file": ("empty.jsonl", b"", "empty.jsonl"),
    "malformed line": (
        "bad.jsonl",
        b'{"id": 1, "text": "a"}\n{"id": 2, "text": \n',
        "bad.jsonl, line 2",
    ),
    "missing field": (
        "nofield.jsonl",
        b'{"id": 1, "text": "a"}\n{"id": 2, "body": "b"}\n',
        "line 2: required field 'text'",
    ),
    "invalid utf-8": (
        "latin.jsonl",
        b'{"id": 1, "text": "a"}\n{"id": 2, "text": "caf\xe9"}\n',
        "line 2: invalid UTF-8",
    ),
    "duplicate id": (
        "dup.jsonl",
        b'{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n',
        "id '1' on line 2 was already used on line 1",
    ),
    "csv missing field": ("bad.csv", b"id,body\n1,hello\n", "required field 'text'"),
    "csv unclosed quote": (
        "stray.csv",
        b'id,text\n1,a\n2,"b\n3,c\n4,d\n',
        "stray.csv, line 3: a quote opened on this line is never closed",
    ),
    "NaN": ("nan.jsonl", b'{"id": 1, "text": "a", "s": NaN}\n', "line 1: field 's' holds nan"),
    "lone surrogate": (
        "sur.jsonl",
        b'{"id": 1, "text": "\\ud800"}\n',
        "line 1: field 'text' holds a lone surrogate",
    ),
    "deep nesting": (
        "deep.jsonl",
        b'{"id": 1, "text": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n",
        "deep.jsonl, line 1: nested more than 100 levels deep",
    ),
    "escape codes in an id": (
        "ansi.jsonl",
        b'{"id": "\\u001b[2J", "text": "a"}\n',
        "line 1: the id '\\x1b[2J' contains a control character",
    ),
    "rich markup in an id": (
        "markup.jsonl",
        b'{"id": "[/x]", "text": "a"}\n{"id": "[/x]", "text": "b"}\n',
        "id '[/x]' on line 2 was already used on line 1",
    ),
    "item over the size limit": (
        "big.jsonl",
        b'{"id": 1, "text": "' + b"x" * 150_000 + b'"}\n',
        "big.jsonl, line 1: the item is 150,",
    ),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_refused_with_file_and_line_and_nothing_changes(name, tmp_path, labeled_db):
    filename, content, message = BAD_INPUTS[name]
    path = tmp_path / filename
    path.write_bytes(content)
    before = snapshot(labeled_db)
    result = run(
        "label",
        path,
        "--guideline",
        SENTIMENT,
        "--db",
        labeled_db,
        "--model",
        "openai/never-called",
        "--api-base",
        "http://127.0.0.1:9/v1",
    )
    assert result.exit_code == 1
    assert message in result.output
    assert snapshot(labeled_db) == before


def test_a_broken_guideline_is_refused_with_its_file(tmp_path):
    broken = tmp_path / "broken.md"
    broken.write_text("---\ntask: sorting\nlabels: [a, b]\n---\n", encoding="utf-8")
    result = run("plan", tmp_path / "x.jsonl", "--guideline", broken)
    assert result.exit_code == 1
    assert "broken.md: task 'sorting' is unknown" in result.output


def test_a_guideline_path_that_is_a_directory_is_refused(tmp_path):
    result = run("plan", tmp_path / "x.jsonl", "--guideline", tmp_path)
    assert result.exit_code == 1
    assert f"{tmp_path} is a directory, not a guideline file" in result.output


def test_the_item_size_limit_is_an_option_of_plan_and_label(tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", [{"id": 1, "text": "x" * 150_000}])
    plan = ("plan", path, "--guideline", SENTIMENT, "--db", tmp_path / "none.duckdb")
    refused = run(*plan)
    assert refused.exit_code == 1
    assert "raise it with --max-item-bytes" in refused.output
    assert run(*plan, "--max-item-bytes", 200_000).exit_code == 0
    assert "--max-item-bytes" in run("label", "--help").output


PLAN = ("plan", "items.jsonl", "--guideline", SENTIMENT)
LABEL = ("label", "items.jsonl", "--guideline", SENTIMENT)
OUT_OF_RANGE = [
    (*LABEL, "--min-agreement", 5),
    (*LABEL, "--min-agreement", -0.1),
    (*LABEL, "--min-confidence", 1.5),
    (*LABEL, "--audit-share", 2),
    (*LABEL, "--budget", -1),
    (*LABEL, "--budget", 0),
    (*LABEL, "--timeout", 0),
    (*LABEL, "--temperature", -1),
    (*LABEL, "--temperature", 3),
    (*LABEL, "--stop-confidence", 0.2),
    (*LABEL, "--samples", 0),
    (*LABEL, "--concurrency", 0),
    (*LABEL, "--max-item-bytes", 0),
    (*PLAN, "--samples", 0),
    (*PLAN, "--limit", 0),
    (*PLAN, "--max-item-bytes", -5),
    ("import-labels", "gold.jsonl", "--annotator", "a", "-g", SENTIMENT, "--max-item-bytes", 0),
    ("calibrate", "--target-error", 1.5),
    ("calibrate", "--target-error", 0.1, "--confidence", 1),
    ("calibrate", "--target-error", 0.1, "--holdout", 0.95),
    ("eval", "--bootstrap", 10),
    ("demo", "--items", 0),
    ("review", "--port", 0),
    ("review", "--port", 70_000),
    ("review", "--overlap", 0),
    ("review", "--blind-share", 1.5),
]


@pytest.mark.parametrize(
    "args", OUT_OF_RANGE, ids=[" ".join(map(str, a[-2:])) for a in OUT_OF_RANGE]
)
def test_a_numeric_option_outside_its_range_is_refused_before_anything_runs(tmp_path, args):
    db = tmp_path / "log.duckdb"
    result = run(*args, "--db", db)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{args[-2]}'" in result.output
    assert not db.exists()


def test_plan_counts_items_and_cost_before_spending(tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": i, "text": "so good"} for i in range(7)])
    result = run(
        "plan",
        path,
        "--guideline",
        SENTIMENT,
        "--db",
        tmp_path / "none.duckdb",
        "--model",
        "gpt-4o-mini",
        "--json",
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.raw)
    assert plan["items"] == 7 and plan["to_label"] == 7
    assert plan["models"][0]["max_samples"] == 35
    assert plan["max_cost_usd"] > 0, "gpt-4o-mini is in litellm's local price table"
    assert not (tmp_path / "none.duckdb").exists(), "a dry run creates nothing"


def test_import_labels_twice_adds_nothing_the_second_time(tmp_path, labeled_db):
    gold = tmp_path / "gold.jsonl"
    result = run(
        "import-labels", gold, "--annotator", "gold", "--guideline", SENTIMENT, "--db", labeled_db
    )
    assert result.exit_code == 0
    assert "3 rows read, 0 reviews added" in result.output


def test_import_labels_refuses_a_label_outside_the_guideline(tmp_path, labeled_db):
    bad = write_jsonl(
        tmp_path / "labels.jsonl",
        [{"id": "g1", "label": "positive"}, {"id": "g2", "label": "ecstatic"}],
    )
    before = snapshot(labeled_db)
    result = run(
        "import-labels", bad, "--annotator", "ann", "--guideline", SENTIMENT, "--db", labeled_db
    )
    assert result.exit_code == 1
    assert (
        "labels.jsonl, line 2: field 'label': 'ecstatic' is not one of the labels" in result.output
    )
    assert snapshot(labeled_db) == before


def test_status_and_export_show_imported_labels_as_human(tmp_path, labeled_db):
    status = run("status", "--db", labeled_db, "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.raw)["reviews"] == 3
    for suffix in (".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"labels{suffix}"
        result = run("export", "--db", labeled_db, "--out", out)
        assert result.exit_code == 0, result.output
        assert "wrote 3 final labels" in result.output
    exported = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert {(r["item_id"], r["source"], r["reviewer"]) for r in exported} == {
        (f"g{i}", "human", "gold") for i in range(3)
    }


def test_a_model_annotator_is_imported_with_its_confidence_but_never_becomes_a_final_label(
    tmp_path, labeled_db
):
    judge = write_jsonl(
        tmp_path / "judge.jsonl",
        [
            {"id": "g0", "label": "negative", "p": 0.9},
            {"id": "g9", "text": "t9", "label": "neutral", "p": "0.55"},
        ],
    )
    result = run(
        "import-labels", judge, "--annotator", "gpt-4o", "--model", "--confidence-field", "p",
        "--guideline", SENTIMENT, "--db", labeled_db,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(labeled_db))
    try:
        imported = con.execute(
            "SELECT item_id, annotator_kind, confidence FROM reviews WHERE reviewer = 'gpt-4o'"
            " ORDER BY item_id"
        ).fetchall()
        final = con.execute("SELECT item_id, reviewer FROM final_labels ORDER BY 1").fetchall()
    finally:
        con.close()
    assert imported == [("g0", "model", 0.9), ("g9", "model", 0.55)]
    assert final == [(f"g{i}", "gold") for i in range(3)], "the model's labels are not final"


@pytest.mark.parametrize(
    ("value", "message"),
    [("high", "confidence 'high' is not a number"), (1.5, "confidence 1.5 is outside 0..1")],
)
def test_a_bad_confidence_names_the_line_and_changes_nothing(tmp_path, labeled_db, value, message):
    judge = write_jsonl(
        tmp_path / "judge.jsonl",
        [{"id": "g0", "label": "negative", "p": 0.9}, {"id": "g1", "label": "neutral", "p": value}],
    )
    before = snapshot(labeled_db)
    result = run(
        "import-labels", judge, "--annotator", "gpt-4o", "--model", "--confidence-field", "p",
        "--guideline", SENTIMENT, "--db", labeled_db,
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"judge.jsonl, line 2: {message}" in result.output
    assert snapshot(labeled_db) == before


def test_export_refuses_an_unknown_format(tmp_path, labeled_db):
    result = run("export", "--db", labeled_db, "--out", tmp_path / "labels.xlsx")
    assert result.exit_code == 1
    assert "use one of .jsonl, .csv, .parquet" in result.output


def test_status_of_a_missing_database_says_what_to_do(tmp_path):
    result = run("status", "--db", tmp_path / "nothing.duckdb")
    assert result.exit_code == 1
    assert "labelagent demo" in result.output


def test_the_documented_schema_is_the_one_the_code_makes():
    assert (REPO / "docs" / "schema.md").read_text(encoding="utf-8") == generate(), (
        "run: labelagent schema --out docs/schema.md"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('id,label\ng1,positive\ng2,"negative\ng3,neutral\n', "line 3: a quote opened on this"),
        ("id,label\ng1," + "[" * 5000 + "\n", "labels.csv, line 2: field 'label': '[[[["),
        ('{"id": "g1", "label": "positive", "p": NaN}\n', "line 1: field 'p' holds nan"),
    ],
)
def test_import_labels_refuses_a_hostile_file_and_changes_nothing(
    tmp_path, labeled_db, content, message
):
    path = tmp_path / ("labels.jsonl" if content.startswith("{") else "labels.csv")
    path.write_text(content, encoding="utf-8")
    before = snapshot(labeled_db)
    result = run(
        "import-labels", path, "--annotator", "ann", "--guideline", SENTIMENT, "--db", labeled_db
    )
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output) < 1000
    assert snapshot(labeled_db) == before


def test_status_and_plan_print_the_same_json_keys_in_the_same_order(tmp_path, labeled_db):
    """The JSON the CLI prints is interface: the results are typed now, the JSON is as it was."""
    status = json.loads(run("status", "--db", labeled_db, "--json").raw)
    expected = {
        "db": str(labeled_db),
        "items": 3,
        "drafts": 0,
        "failed_drafts": 0,
        "cost_usd": 0.0,
        "runs": 0,
        "reviews": 3,
        "waiting": 0,
        "guidelines": [
            {
                "guideline_hash": load_guideline(SENTIMENT).content_hash,
                "name": "sentiment",
                "task": "classification",
                "auto": 0,
                "escalated": 0,
                "waiting": 0,
                "final_labels": 3,
                "reviewed_items": 3,
                "cost_usd": 0.0,
                "escalation_reasons": {},
            }
        ],
    }
    costs = status.pop("costs")
    assert list(costs) == ["reviewer_cost_per_hour", "guidelines"], "costs come last, added"
    assert json.dumps(status) == json.dumps(expected), "the same keys, values and order"
    path = write_jsonl(
        tmp_path / "items.jsonl", [{"id": "g0", "text": "t0"}, {"id": "n", "text": "x"}]
    )
    plan = json.loads(run("plan", path, "-g", SENTIMENT, "--db", labeled_db, "--json").raw)
    assert list(plan) == [
        "input",
        "items",
        "already_decided",
        "to_label",
        "prompt_tokens_per_sample",
        "models",
        "max_cost_usd",
        "note",
    ]
    assert plan["models"] == [
        {
            "model": "local",
            "max_samples": 10,
            "max_cost_usd": 0.0,
            "stage": 0,
            "expected_cost_usd": None,
        }
    ]
    assert (plan["items"], plan["already_decided"], plan["to_label"]) == (2, 0, 2)
