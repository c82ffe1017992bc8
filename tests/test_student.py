"""A student model learns a guideline from the log's trusted labels, labels the rest for nothing,
and is calibrated only on human labels it was never trained on."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GUIDELINES, REPO, rows, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from labelagent.calibration.calibrate import run_calibration
from labelagent.calibration.rule import Thresholds
from labelagent.cli import app
from labelagent.errors import ConfigError
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.store import students
from labelagent.student import decode, fit
from labelagent.student_train import train_student

SENTIMENT = GUIDELINES / "sentiment.md"
WORDS = {
    "positive": ["love", "great", "wonderful", "happy", "excellent", "delighted"],
    "negative": ["hate", "awful", "terrible", "angry", "broken", "disappointed"],
    "neutral": ["tuesday", "parcel", "address", "meeting", "weather", "schedule"],
}
FILLER = ["the", "my", "order", "it", "was", "today", "and", "service", "this", "a"]


def sentence(label: str, rng: random.Random) -> str:
    words = rng.sample(FILLER, 4) + rng.sample(WORDS[label], 2)
    rng.shuffle(words)
    return " ".join(words)


def dataset(n: int, seed: int = 0, prefix: str = "s") -> list[dict]:
    rng = random.Random(seed)
    labels = list(WORDS)
    out = []
    for i in range(n):
        label = labels[i % 3]
        out.append({"id": f"{prefix}{i:04d}", "text": sentence(label, rng), "label": label})
    return out


def cli(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def items_file(path: Path, data: list[dict]) -> Path:
    return write_jsonl(path, [{"id": r["id"], "text": r["text"]} for r in data])


@pytest.fixture
def gold_log(tmp_path: Path, db: Path) -> Path:
    write_jsonl(tmp_path / "gold.jsonl", dataset(150))
    cli(
        "import-labels", tmp_path / "gold.jsonl", "--annotator", "gold", "-g", SENTIMENT, "--db", db
    )
    return db


def test_a_student_learns_only_from_human_labels_unless_asked_and_never_from_itself(tmp_path, db):
    data = dataset(90)
    humans, models, autos = data[:30], data[30:60], data[60:]
    write_jsonl(tmp_path / "gold.jsonl", humans)
    cli(
        "import-labels", tmp_path / "gold.jsonl", "--annotator", "gold", "-g", SENTIMENT, "--db", db
    )
    write_jsonl(tmp_path / "judge.jsonl", models)
    cli(
        "import-labels", tmp_path / "judge.jsonl", "--annotator", "judge", "--model",
        "-g", SENTIMENT, "--db", db,
    )  # fmt: skip
    llm = FakeBackend(by_item={r["id"]: r["label"] for r in autos})
    guideline = load_guideline(SENTIMENT)
    no_audit = Thresholds(audit_share=0.0)
    Labeler(db, guideline, [llm], RunSettings(samples=2), no_audit).run(
        items_file(tmp_path / "autos.jsonl", autos)
    )

    trusted = students.trusted_rows(db, guideline.content_hash, include_auto=False)
    assert {r.item_id for r in trusted} == {r["id"] for r in humans}, "an imported model is not"
    with_auto = students.trusted_rows(db, guideline.content_hash, include_auto=True)
    assert {r.item_id for r in with_auto} == {r["id"] for r in humans + autos}
    assert {r.source for r in with_auto if r.item_id.startswith("s006")} == {"auto"}

    first = train_student(db, guideline, include_auto=True, holdout=0.0)
    student = students.load(db, guideline.content_hash, first.student_id)
    assert student.n_train == 60 and student.include_auto
    assert sorted(row[0] for row in student.training) == sorted(r["id"] for r in humans + autos)
    backend_name = first.student_id
    new = dataset(30, seed=5, prefix="n")
    Labeler(db, guideline, [_student(db, guideline)], RunSettings(), no_audit).run(
        items_file(tmp_path / "new.jsonl", new)
    )
    assert rows(db, f"SELECT count(*) FROM decisions WHERE model = '{backend_name}'") == [(30,)]
    again = students.trusted_rows(db, guideline.content_hash, include_auto=True)
    assert {r.item_id for r in again} == {r["id"] for r in humans + autos}, (
        "a student's own labels are never trusted, even with --include-auto"
    )


def _student(db: Path, guideline):
    from labelagent.backends import make_backend

    return make_backend("student", db=db, guideline=guideline)


def test_training_twice_on_the_same_labels_gives_the_same_student(gold_log):
    guideline = load_guideline(SENTIMENT)
    first = train_student(gold_log, guideline)
    second = train_student(gold_log, guideline)
    assert first.new and not second.new
    assert first.student_id == second.student_id
    assert first.n_train + first.n_kept_out == 150 and 30 <= first.n_kept_out <= 60
    assert first.kept_out_accuracy > 0.9


def test_a_student_reloaded_from_the_log_in_a_fresh_process_gives_the_same_scores(
    tmp_path, gold_log
):
    guideline = load_guideline(SENTIMENT)
    trained = train_student(gold_log, guideline)
    texts = [{"text": r["text"]} for r in dataset(40, seed=9)]
    stored = students.load(gold_log, guideline.content_hash, trained.student_id)
    here = decode(stored.params).probabilities(texts).tolist()
    script = (
        "import json, sys\n"
        "from labelagent.store import students\n"
        "from labelagent.student import decode\n"
        "s = students.load(sys.argv[1], sys.argv[2])\n"
        "print(json.dumps(decode(s.params).probabilities(json.loads(sys.argv[3])).tolist()))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script, str(gold_log), guideline.content_hash, json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert json.loads(fresh.stdout) == here, "bit for bit"
    assert stored.params[:2] == b"\x1f\x8b", "gzipped JSON, not a pickle"
    params = json.loads(__import__("gzip").decompress(stored.params))
    assert set(params) >= {"blocks", "coef", "intercept", "labels"}


def test_other_task_types_are_refused_before_any_work(tmp_path, gold_log):
    before = rows(gold_log, "SELECT count(*) FROM students")
    for name in ("ner.md", "helpfulness.md"):
        result = CliRunner().invoke(
            app, ["student", "train", "-g", str(GUIDELINES / name), "--db", str(gold_log)]
        )
        assert result.exit_code == 1
        assert "student supports classification and preference" in " ".join(result.output.split())
    assert rows(gold_log, "SELECT count(*) FROM students") == before
    with pytest.raises(ConfigError, match="student supports classification and preference"):
        _student(gold_log, load_guideline(GUIDELINES / "ner.md"))


def test_calibrate_judges_a_student_only_on_items_it_was_not_trained_on(tmp_path, db):
    """The student fits its 200 training items; the 100 other human labels contradict it (their
    gold labels are shuffled). Counting the training items, a threshold would pass; without
    them, calibrate must refuse one."""
    guideline = load_guideline(SENTIMENT)
    train = dataset(200)
    write_jsonl(tmp_path / "train.jsonl", train)
    cli(
        "import-labels",
        tmp_path / "train.jsonl",
        "--annotator",
        "gold",
        "-g",
        SENTIMENT,
        "--db",
        db,
    )
    trained = train_student(db, guideline, holdout=0.0)
    assert trained.n_train == 200
    others = dataset(100, seed=3, prefix="o")
    rng = random.Random(1)
    contradicting = [
        {**r, "label": rng.choice([x for x in WORDS if x != r["label"]])} for r in others
    ]
    write_jsonl(tmp_path / "others.jsonl", contradicting)
    cli(
        "import-labels",
        tmp_path / "others.jsonl",
        "--annotator",
        "gold",
        "-g",
        SENTIMENT,
        "--db",
        db,
    )
    everything = items_file(tmp_path / "all.jsonl", train + others)
    Labeler(db, guideline, [_student(db, guideline)], RunSettings(), Thresholds()).run(everything)
    assert rows(db, "SELECT count(*), count(DISTINCT model) FROM decisions") == [(300, 1)]

    right_on_training = rows(
        db,
        "SELECT count(*) FROM decisions d JOIN reviews r USING (item_id, guideline_hash)"
        " WHERE d.item_id LIKE 's%' AND CAST(d.label AS VARCHAR) = CAST(r.label AS VARCHAR)",
    )[0][0]
    assert right_on_training >= 198, "counted, its training items would vouch for it"

    result = run_calibration(db, 0.1, 0.9, annotator="student")
    assert result.model == trained.student_id
    assert result.n_calibration + result.n_holdout == 100, "the 200 trained-on items are out"
    assert result.rule is None and result.status in ("no_rule", "refused_by_holdout")


def test_import_train_label_calibrate_and_label_again_from_the_command_line(tmp_path, db):
    gold, rest = dataset(300), dataset(300, seed=2, prefix="r")
    write_jsonl(tmp_path / "gold.jsonl", gold)
    g = str(SENTIMENT)
    cli("import-labels", tmp_path / "gold.jsonl", "--annotator", "gold", "-g", g, "--db", db)
    trained = cli("student", "train", "-g", g, "--db", db)
    student_id = trained.split(":", 2)[0] + ":" + trained.split(":", 2)[1]
    assert student_id.startswith("student:") and "kept out for calibrate" in trained
    assert student_id in cli("student", "list", "--db", db)

    first = items_file(tmp_path / "first.jsonl", gold + rest[:200])
    planned = json.loads(cli("plan", first, "-g", g, "--db", db, "--model", "student", "--json"))
    assert [
        {k: m[k] for k in ("model", "max_samples", "max_cost_usd")} for m in planned["models"]
    ] == [{"model": student_id, "max_samples": 500, "max_cost_usd": 0.0}], (
        "one free sample per item"
    )
    cli("label", first, "-g", g, "--db", db, "--model", "student")
    assert rows(
        db, "SELECT DISTINCT model, route, reasons LIKE '%uncalibrated%' FROM decisions"
    ) == [(student_id, "escalated", True)], "a student accepts nothing before it is calibrated"
    assert rows(db, "SELECT count(*), sum(cost_usd) FROM drafts") == [(500, 0.0)], "one sample each"

    result = json.loads(
        cli("calibrate", "--target-error", "0.1", "--annotator", "student", "--db", db, "--json")
    )
    kept_out = rows(db, "SELECT settings->>'kept_out' FROM students")[0][0]
    assert result["n_calibration"] + result["n_holdout"] == int(kept_out)
    assert result["status"] == "rule" and result["model"] == student_id

    second = items_file(tmp_path / "second.jsonl", rest[200:])
    cli("label", second, "-g", g, "--db", db, "--model", "student")
    routed = rows(
        db,
        "SELECT route, rule->>'source', count(*) FROM decisions WHERE item_id >= 'r0200'"
        " AND item_id LIKE 'r%' GROUP BY ALL ORDER BY ALL",
    )
    assert {source for _, source, _ in routed} == {f"calibration {result['calibration_id']}"}
    assert dict((route, n) for route, _, n in routed).get("auto", 0) >= 80, routed


def test_a_preference_student_reads_the_pair_both_ways_alike():
    """Learned on pairs and on the same pairs swapped, without an intercept: swapping the
    replies swaps the probabilities exactly, so it has no favourite position."""
    guideline = load_guideline(GUIDELINES / "preference.md")
    rng = random.Random(4)
    items, labels = [], []
    for i in range(60):
        good, bad = sentence("positive", rng), sentence("negative", rng)
        a_wins = i % 2 == 0
        a, b = (good, bad) if a_wins else (bad, good)
        items.append({"prompt": f"question {i}", "response_a": a, "response_b": b})
        labels.append("A" if a_wins else "B")
    model = fit(guideline, items, labels)
    new = [{"prompt": "q", "response_a": sentence("positive", rng), "response_b": "awful hate"}]
    swapped = [{**new[0], "response_a": new[0]["response_b"], "response_b": new[0]["response_a"]}]
    forward, backward = model.probabilities(new)[0], model.probabilities(swapped)[0]
    assert model.labels == ["A", "B"] and forward[0] > 0.5
    assert forward[0] == pytest.approx(backward[1], abs=1e-12)


def test_label_with_a_student_that_is_not_there_says_how_to_train_one(tmp_path, gold_log):
    items = items_file(tmp_path / "items.jsonl", dataset(5, prefix="x"))
    for db in (tmp_path / "missing.duckdb", gold_log):
        result = CliRunner().invoke(
            app, ["label", str(items), "-g", str(SENTIMENT), "--db", str(db), "--model", "student"]
        )
        assert result.exit_code == 1
        assert "student train" in " ".join(result.output.split())
    assert not (tmp_path / "missing.duckdb").exists()
