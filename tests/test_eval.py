"""`labelagent eval`: which labels count, LLM-vs-human beside human-vs-human, and the report."""

import json
from pathlib import Path

import pytest
from conftest import GUIDELINES, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from labelagent.calibration.rule import Thresholds, thresholds_for
from labelagent.cli import app
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.store.db import transaction

SENTIMENT = GUIDELINES / "sentiment.md"
GOLD = {f"t{i:02d}": ("positive", "negative", "neutral")[i % 3] for i in range(30)}
MODEL = {k: ("negative" if k in ("t00", "t03", "t06") else g) for k, g in GOLD.items()}
ANN = {k: ("neutral" if k == "t01" else g) for k, g in GOLD.items()}
BOB = {k: ("positive" if k in ("t01", "t02") else g) for k, g in GOLD.items()}


def invoke(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def import_labels(tmp_path: Path, db: Path, name: str, labels: dict, *flags: str) -> None:
    path = write_jsonl(
        tmp_path / f"{name}.jsonl", [{"id": k, "label": v} for k, v in labels.items()]
    )
    invoke("import-labels", path, "--annotator", name, "-g", SENTIMENT, "--db", db, *flags)


@pytest.fixture
def log(tmp_path: Path, db: Path) -> Path:
    """30 items labeled by a scripted model (27 right), gold, and two more annotators."""
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": k, "text": k} for k in GOLD])
    Labeler(
        db,
        load_guideline(SENTIMENT),
        [FakeBackend(by_item=MODEL)],
        RunSettings(),
        Thresholds(audit_share=0.0),
    ).run(items)
    for name, labels in (("gold", GOLD), ("ann", ANN), ("bob", BOB)):
        import_labels(tmp_path, db, name, labels)
    return db


def evaluate(db: Path, *args: str) -> dict:
    return json.loads(invoke("eval", "--db", db, "--json", "--bootstrap", "100", *args))


def test_the_model_is_compared_with_gold_beside_each_human(log):
    [g] = evaluate(log, "--reference", "gold")["guidelines"]
    figures = {
        c["annotator"]: (c["kind"], c["n"], c["metrics"]["accuracy"]) for c in g["comparisons"]
    }
    assert {name: (kind, n) for name, (kind, n, _) in figures.items()} == {
        "fake/model": ("model", 30),
        "ann": ("human", 30),
        "bob": ("human", 30),
    }, "the reference itself is not compared"
    assert figures["fake/model"][2]["value"] == 0.9
    assert figures["ann"][2]["value"] == round(29 / 30, 4)
    assert figures["bob"][2]["value"] == round(28 / 30, 4)
    accuracy = figures["fake/model"][2]
    assert accuracy["low"] <= 0.9 <= accuracy["high"]
    assert g["human_agreement"]["n_annotators"] == 2
    assert g["human_agreement"]["range"]["accuracy"] == [round(28 / 30, 4), round(29 / 30, 4)]
    assert g["inside_human_range"] == {"fake/model": False}
    model = next(c for c in g["comparisons"] if c["annotator"] == "fake/model")
    labels = model["confusion"]["labels"]
    positive = dict(
        zip(labels, model["confusion"]["matrix"][labels.index("positive")], strict=True)
    )
    assert positive == {"positive": 7, "negative": 3, "neutral": 0}, "rows: gold; columns: model"
    assert model["per_label"]["negative"]["precision"]["value"] == round(10 / 13, 4)


def test_a_review_that_saw_the_models_label_is_not_an_independent_label(log):
    with transaction(log) as con:
        con.execute(
            "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, blind, source)"
            " SELECT item_id, guideline_hash, 'carl', label, 'accept', false, 'review_ui'"
            " FROM decisions"
        )
    [g] = evaluate(log, "--reference", "gold")["guidelines"]
    assert "carl" not in {c["annotator"] for c in g["comparisons"]}
    assert g["seen_model_label"] == 30


def test_the_default_reference_is_the_majority_of_independent_humans(log):
    [g] = evaluate(log)["guidelines"]
    humans = {c["annotator"]: c["n"] for c in g["comparisons"] if c["kind"] == "human"}
    assert humans == {"gold": 28, "ann": 28, "bob": 29}, (
        "each human against the others; ties between the other two are left out"
    )
    assert g["human_agreement"]["n_annotators"] == 3


def test_a_model_annotator_with_confidence_is_compared_and_calibrated(tmp_path, log):
    judge = write_jsonl(
        tmp_path / "judge.jsonl",
        [{"id": k, "label": v, "p": 0.6 if k in ("t00", "t03") else 0.9} for k, v in MODEL.items()],
    )
    invoke(
        "import-labels", judge, "--annotator", "judge", "--model", "--confidence-field", "p",
        "-g", SENTIMENT, "--db", log,
    )  # fmt: skip
    [g] = evaluate(log, "--reference", "gold")["guidelines"]
    assert {c["annotator"]: c["kind"] for c in g["comparisons"]}["judge"] == "model"
    result = json.loads(
        invoke(
            "calibrate", "--db", log, "--annotator", "judge", "--reference", "gold",
            "--target-error", "0.12", "--confidence", "0.8", "--holdout", "0", "--json",
        )
    )  # fmt: skip
    assert result["signal"] == "confidence"
    assert [(s["threshold"], s["accepted"], s["errors"]) for s in result["selection"]["steps"]] == [
        (0.9, 28, 1),
        (0.6, 30, 3),
    ]
    assert result["rule"]["threshold"] == 0.9


def test_a_rule_on_an_imported_models_confidence_is_not_applied_to_labeling_runs(tmp_path, log):
    judge = write_jsonl(
        tmp_path / "judge.jsonl",
        [{"id": k, "label": v, "p": 0.6 if v != GOLD[k] else 0.9} for k, v in MODEL.items()],
    )
    invoke(
        "import-labels", judge, "--annotator", "judge", "--model", "--confidence-field", "p",
        "-g", SENTIMENT, "--db", log,
    )  # fmt: skip
    output = invoke(
        "calibrate", "--db", log, "--annotator", "judge", "--reference", "gold",
        "--target-error", "0.12", "--confidence", "0.8", "--holdout", "0",
    )  # fmt: skip
    assert "not applied to labeling runs" in " ".join(output.split())
    used = thresholds_for(log, load_guideline(SENTIMENT).content_hash, "judge")
    assert used.source == "defaults"


def test_an_import_cannot_take_the_name_of_a_model_that_labeled_the_log(tmp_path, log):
    path = write_jsonl(tmp_path / "judge.jsonl", [{"id": "t00", "label": "positive"}])
    result = CliRunner().invoke(
        app,
        ["import-labels", str(path), "--annotator", "fake/model", "--model", "-g", str(SENTIMENT),
         "--db", str(log)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "is the name of a model that labeled items in this log" in " ".join(
        result.output.split()
    )


def test_an_unknown_reference_is_refused_with_the_names_known(log):
    for command in (["eval"], ["calibrate", "--target-error", "0.1"]):
        result = CliRunner().invoke(app, [*command, "--db", str(log), "--reference", "Gold"])
        assert result.exit_code == 1
        assert "no annotator 'Gold'" in result.output and "gold" in result.output


def test_an_annotator_keeps_its_kind(tmp_path, log):
    path = write_jsonl(tmp_path / "again.jsonl", [{"id": "t00", "label": "positive"}])
    result = CliRunner().invoke(
        app,
        ["import-labels", str(path), "--annotator", "gold", "--model", "-g", str(SENTIMENT),
         "--db", str(log)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "annotator 'gold' is already in the log as a person" in result.output


def test_the_html_report_is_written_and_self_contained(tmp_path, log):
    report = tmp_path / "report.html"
    invoke("eval", "--db", log, "--bootstrap", "100", "--html", report)
    html = report.read_text(encoding="utf-8")
    assert "sentiment" in html and "data:image/png;base64," in html
    assert "https://" not in html and "http://" not in html


def test_eval_of_a_missing_database_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["eval", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1
    assert "labelagent demo" in result.output


TOPICS = """---
name: topics
task: multilabel
labels:
  sport: About a sport.
  music: About music.
fields: [text]
---
Mark every topic.
"""
SPAN = {"start": 0, "end": 4, "label": "person"}
TASKS = {
    "topics": (["sport"], ["sport", "music"], ["exact_match"], 0.5),
    "helpfulness": (
        {"helpfulness": 4, "harmlessness": 5},
        {"helpfulness": 3, "harmlessness": 5},
        ["mean_abs_diff:helpfulness", "weighted_kappa:helpfulness", "accuracy:harmlessness"],
        0.5,
    ),
    "ner": ([SPAN], [{**SPAN, "end": 3}], ["exact_f1", "overlap_f1"], 0.5),
    "preference": ("A", "B", ["accuracy", "cohen_kappa", "krippendorff_alpha", "gwet_ac1"], 0.5),
}


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_its_own_figures(tmp_path, db, task):
    guideline = GUIDELINES / f"{task}.md"
    if task == "topics":
        guideline = tmp_path / "topics.md"
        guideline.write_text(TOPICS)
    same, other, expected, first_value = TASKS[task]
    fields = {"text": "Toni sings", "prompt": "p", "response": "r", "response_a": "a"}
    fields["response_b"] = "b"
    for name in ("gold", "ann"):
        rows_ = [
            {"id": f"i{i}", **fields, "label": same if name == "gold" or i % 2 else other}
            for i in range(6)
        ]
        path = write_jsonl(tmp_path / f"{name}.jsonl", rows_)
        invoke("import-labels", path, "--annotator", name, "-g", guideline, "--db", db)
    [g] = evaluate(db, "--reference", "gold")["guidelines"]
    [ann] = g["comparisons"]
    assert set(expected) <= set(ann["metrics"])
    assert ann["metrics"][expected[0]]["value"] == first_value
