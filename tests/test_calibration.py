"""Choosing the acceptance rule: the guarantee on synthetic data where the truth is known, the
fixed-sequence test's choices, and `labelagent calibrate` on a real log."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import GUIDELINES, rows, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from labelagent.calibration.learn import Example, calibrate, levels, select_threshold, split
from labelagent.calibration.rule import Thresholds, thresholds_for
from labelagent.cli import app
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings

SENTIMENT = GUIDELINES / "sentiment.md"
LEVELS = np.array([0.55, 0.65, 0.75, 0.85, 0.95, 1.0])


def synthetic(rng: np.random.Generator, n: int) -> list[Example]:
    """Scores on six levels; an item with score s is right with probability s."""
    scores = rng.choice(LEVELS, size=n)
    right = rng.random(n) < np.minimum(scores, 0.995)
    return [
        Example(f"i{k}", float(s), bool(r))
        for k, (s, r) in enumerate(zip(scores, right, strict=True))
    ]


def true_error(threshold: float) -> float:
    accepted = LEVELS[threshold <= LEVELS]
    return float(np.mean(1 - np.minimum(accepted, 0.995)))


@pytest.mark.parametrize(("target", "confidence"), [(0.10, 0.9), (0.15, 0.9), (0.20, 0.8)])
def test_the_error_of_accepted_items_exceeds_the_target_in_at_most_1_minus_c_of_seeds(
    target, confidence
):
    violations, chosen = 0, 0
    seeds = 400
    for seed in range(seeds):
        selection = select_threshold(
            synthetic(np.random.default_rng(seed), 300), target, confidence
        )
        if selection.threshold is not None:
            chosen += 1
            violations += true_error(selection.threshold) > target
    assert chosen > seeds * 0.9, "the rule is not so timid that it never accepts anything"
    assert violations / seeds <= (1 - confidence) + 0.03


@pytest.mark.parametrize("target", [0.15, 0.20])
def test_the_guarantee_holds_for_scores_with_many_distinct_values(target):
    """Scores uniform on [0.5, 1], an item right with probability its score: a threshold t
    accepts items with error (1 - t) / 2. Here the thresholds are score quantiles."""
    violations, chosen = 0, 0
    seeds = 400
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        scores = rng.uniform(0.5, 1.0, 300)
        right = rng.random(300) < scores
        examples = [
            Example(f"i{k}", float(s), bool(r))
            for k, (s, r) in enumerate(zip(scores, right, strict=True))
        ]
        selection = select_threshold(examples, target, 0.9)
        if selection.threshold is not None:
            chosen += 1
            violations += (1 - selection.threshold) / 2 > target
    assert chosen > seeds * 0.9
    assert violations / seeds <= 0.1 + 0.03


def test_tied_items_are_accepted_or_escalated_together():
    examples = [Example(f"a{i}", 0.9, True) for i in range(100)]
    examples += [Example(f"b{i}", 0.8, i < 40) for i in range(60)]
    selection = select_threshold(examples, target_error=0.10, confidence=0.9)
    assert [(s.threshold, s.accepted, s.errors, s.passed) for s in selection.steps] == [
        (0.9, 100, 0, True),
        (0.8, 160, 20, False),
    ]
    assert selection.threshold == 0.9


def test_thresholds_too_small_to_pass_at_half_the_target_error_are_skipped():
    examples = [Example(f"top{i}", 1.0, True) for i in range(30)]
    examples += [Example(f"h{i}", 0.9, i != 0) for i in range(40)]
    examples += [Example(f"m{i}", 0.7, i % 2 == 0) for i in range(40)]
    examples += [Example(f"l{i}", 0.5, True) for i in range(200)]
    steps = select_threshold(examples, 0.15, 0.9).steps
    assert steps[0].upper is None, "30 items with 2 errors (a rate of 0.075) cannot pass"
    assert steps[1].accepted == 70 and steps[1].passed, "70 items with 5 errors could; 1 passes"
    assert [s.threshold for s in steps] == [1.0, 0.9, 0.7], "stops at 0.7, never tries 0.5"
    assert not steps[2].passed


def test_with_few_reviewed_items_a_threshold_needs_only_pass_with_one_error():
    examples = [Example(f"top{i}", 1.0, True) for i in range(30)]
    examples += [Example(f"h{i}", 0.9, i >= 3) for i in range(10)]
    selection = select_threshold(examples, 0.15, 0.9)
    assert [(s.threshold, s.upper is not None, s.passed) for s in selection.steps] == [
        (1.0, True, True),
        (0.9, True, False),
    ], "40 items cannot pass with 3 errors, so 30 need only pass with one"


def test_one_error_among_the_first_few_items_does_not_end_the_search():
    examples = [Example(f"top{i}", 1.0, i != 0) for i in range(13)]
    examples += [Example(f"i{i}", 0.9, i % 20 != 0) for i in range(200)]
    selection = select_threshold(examples, 0.20, 0.9)
    assert selection.steps[0].upper is None, "13 items cannot pass at 0.20 with one error"
    assert selection.threshold == 0.9


@pytest.mark.parametrize(("target", "confidence"), [(0.10, 0.9), (0.15, 0.9)])
def test_the_dataset_guarantee_holds_for_the_unreviewed_items_themselves(target, confidence):
    violations = 0
    seeds = 300
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        everything = synthetic(rng, 600)
        reviewed, unreviewed = everything[:300], everything[300:]
        selection = select_threshold(
            reviewed, target, confidence, unreviewed=[e.score for e in unreviewed]
        )
        if selection.threshold is None:
            continue
        accepted = [e for e in unreviewed if e.score >= selection.threshold]
        violations += sum(not e.correct for e in accepted) / len(accepted) > target
    assert violations / seeds <= 1 - confidence


def test_the_dataset_bound_is_wider_than_the_population_bound():
    examples = synthetic(np.random.default_rng(1), 300)
    population = select_threshold(examples, 0.15, 0.9)
    dataset = select_threshold(examples, 0.15, 0.9, unreviewed=[e.score for e in examples])
    assert population.chosen.upper < next(
        s.upper for s in dataset.steps if s.threshold == population.threshold
    )


def test_many_distinct_scores_become_quantile_levels():
    scores = [i / 1000 for i in range(1000)]
    found = levels(scores)
    assert len(found) <= 21 and found == sorted(found, reverse=True)
    assert found[0] == max(scores)


def test_too_few_reviews_says_how_many_more_are_needed_and_that_many_suffice():
    rng = np.random.default_rng(7)
    few = synthetic(rng, 40)
    result = calibrate(few, 0.10, 0.9, "agreement", holdout=0)
    assert result.status == "too_few" and result.rule is None
    assert "more blind reviews" in result.message
    more = synthetic(rng, result.more_reviews_needed * 3)
    passed = calibrate(few + more, 0.10, 0.9, "agreement", holdout=0)
    assert passed.status == "rule", "three times the estimate is plenty"


def test_a_target_no_threshold_can_meet_says_so():
    examples = [Example(f"i{i}", 0.9, i % 3 != 0) for i in range(300)]
    result = calibrate(examples, 0.05, 0.9, "agreement", holdout=0)
    assert result.status == "no_rule" and result.more_reviews_needed is None
    assert "no threshold keeps the error under 0.05" in result.message


def test_the_held_out_part_checks_the_rule():
    examples = synthetic(np.random.default_rng(3), 1000)
    result = calibrate(examples, 0.15, 0.9, "agreement", holdout=0.3)
    assert result.status == "rule"
    assert 250 < result.n_holdout < 350 and result.n_calibration + result.n_holdout == 1000
    h = result.holdout
    assert h.accepted > 0
    assert h.low <= true_error(result.selection.threshold) <= h.high


def test_a_rule_the_held_out_items_contradict_is_refused():
    examples = [Example(f"i{i}", 1.0, True) for i in range(400)]
    _, held = split(examples, 0.25)
    held_ids = {e.item_id for e in held}
    drifted = [Example(e.item_id, e.score, e.item_id not in held_ids) for e in examples]
    result = calibrate(drifted, 0.10, 0.9, "agreement", holdout=0.25)
    assert result.status == "refused_by_holdout" and result.rule is None
    assert "REFUSED" in result.message


# Three tiers of items for a scripted model: clear and right (three of them clear and wrong),
# 3 of 4 votes and right, split 3 to 2 and right only half the time.
def votes(i: int, gold: str) -> tuple[str, ...]:
    wrong = "negative" if gold == "positive" else "positive"
    if i < 100:
        return (wrong,) * 5 if i in (5, 50, 95) else (gold,) * 5
    if i < 160:
        return (gold, wrong, gold, gold, gold)
    return (wrong, gold, wrong, gold, wrong) if i % 2 else (gold, wrong, gold, wrong, gold)


def make_log(tmp_path: Path, db: Path, imported: int) -> Path:
    """200 items labeled by the scripted model; the gold labels of the first `imported` go in."""
    golds = {f"t{i:03d}": "positive" if i % 3 else "negative" for i in range(200)}
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": k, "text": k} for k in golds])
    model = FakeBackend(by_item={k: votes(int(k[1:]), g) for k, g in golds.items()})
    Labeler(
        db,
        load_guideline(SENTIMENT),
        [model],
        RunSettings(samples=5),
        Thresholds(min_agreement=0.9, audit_share=0.0),
    ).run(items)
    chosen = sorted(golds)[:: 200 // imported]
    gold = write_jsonl(tmp_path / "gold.jsonl", [{"id": k, "label": golds[k]} for k in chosen])
    result = CliRunner().invoke(
        app,
        ["import-labels", str(gold), "--annotator", "gold", "-g", str(SENTIMENT), "--db", str(db)],
    )
    assert result.exit_code == 0, result.output
    return db


@pytest.fixture
def reviewed_log(tmp_path: Path, db: Path) -> Path:
    return make_log(tmp_path, db, imported=200)


def calibrate_cli(db: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["calibrate", "--db", str(db), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_calibrate_stores_the_rule_and_apply_routes_decided_items_again(reviewed_log):
    assert rows(reviewed_log, "SELECT route, count(*) FROM decisions GROUP BY 1 ORDER BY 1") == [
        ("auto", 100),
        ("escalated", 100),
    ]
    result = calibrate_cli(
        reviewed_log, "--target-error", "0.1", "--confidence", "0.9", "--holdout", "0", "--apply"
    )
    assert result["status"] == "rule"
    rule = result["rule"]
    assert rule["signal"] == "support" and rule["threshold"] == pytest.approx(0.6875)
    assert [(s["threshold"], s["accepted"], s["errors"]) for s in result["selection"]["steps"]] == [
        (pytest.approx(0.9), 100, 3),
        (pytest.approx(0.6875), 160, 3),
        (pytest.approx(0.56), 200, 23),
    ], "each sample states 0.9, leaving 0.05 to each other label: 2 of 2, 3 of 4, 3 of 5 votes"
    routes = rows(
        reviewed_log,
        "SELECT agreement >= 0.75, route, list_contains(CAST(reasons AS VARCHAR[]), 'audit'),"
        " count(*) FROM decisions GROUP BY ALL ORDER BY ALL",
    )
    audited = sum(n for _, _, audit, n in routes if audit)
    assert routes == [
        (False, "escalated", False, 40),
        *([(True, "auto", False, 160 - audited)]),
        *([(True, "escalated", True, audited)] if audited else []),
    ], "at or above the threshold: auto, except the audit draw (5%)"
    assert 0 < audited < 20
    moved = result["rerouted"]
    assert moved["to_auto"] >= 50, "the 60 items at 3 of 4 votes, less their audit draws"
    assert sum(moved.values()) == 200
    assert rows(reviewed_log, "SELECT count(*) FROM decisions_history") == [
        (200 - moved["unchanged"],)
    ], "every moved decision keeps its old row"
    stored = rows(reviewed_log, "SELECT model, rule, details FROM calibrations")
    assert stored[0][0] == "fake/model"
    assert json.loads(stored[0][1])["min_support"] == rule["threshold"]
    assert len(json.loads(stored[0][2])["examples"]) == 200, "stored with the data it came from"
    used = thresholds_for(reviewed_log, load_guideline(SENTIMENT).content_hash, "fake/model")
    assert used.min_support == rule["threshold"] and used.min_agreement == 0.0
    assert not used.jury_disagreement
    assert used.source == f"calibration {result['calibration_id']}"
    other = thresholds_for(reviewed_log, load_guideline(SENTIMENT).content_hash, "other/model")
    assert other.source == "defaults", "a rule applies to the model it was calibrated for"


def test_later_runs_route_on_the_calibrated_support(tmp_path, reviewed_log):
    calibrate_cli(reviewed_log, "--target-error", "0.1", "--holdout", "0")
    guideline = load_guideline(SENTIMENT)
    rule = thresholds_for(reviewed_log, guideline.content_hash, "fake/model", audit_share=0.0)
    items = write_jsonl(
        tmp_path / "new.jsonl", [{"id": "n1", "text": "x"}, {"id": "n2", "text": "y"}]
    )
    split_votes = ("positive", "negative", "positive", "negative", "positive")
    model = FakeBackend(by_item={"n1": ("positive",) * 5, "n2": split_votes})
    Labeler(reviewed_log, guideline, [model], RunSettings(samples=5), rule).run(items)
    assert rows(
        reviewed_log,
        "SELECT item_id, route, reasons FROM decisions WHERE item_id LIKE 'n%' ORDER BY 1",
    ) == [("n1", "auto", "[]"), ("n2", "escalated", '["low_support"]')], "support 0.9 and 0.56"


def test_calibrate_without_reviews_says_what_to_do(tmp_path, db):
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "a", "text": "x"}])
    Labeler(
        db,
        load_guideline(SENTIMENT),
        [FakeBackend(default="positive")],
        RunSettings(),
        Thresholds(),
    ).run(items)
    result = CliRunner().invoke(app, ["calibrate", "--db", str(db), "--target-error", "0.1"])
    assert result.exit_code == 1
    assert "no item has both a label from fake/model and an independent human label" in (
        result.output
    )


def test_the_dataset_guarantee_speaks_for_the_items_without_a_human_label(tmp_path, db):
    log = make_log(tmp_path, db, imported=100)
    args = ("--target-error", "0.15", "--holdout", "0")
    population = calibrate_cli(log, *args)
    dataset = calibrate_cli(log, *args, "--guarantee", "dataset")
    assert dataset["rule"]["guarantee"] == "dataset"
    bounds = {s["threshold"]: s["upper"] for s in population["selection"]["steps"]}
    for step in dataset["selection"]["steps"]:
        if step["upper"] is not None and bounds.get(step["threshold"]) is not None:
            assert step["upper"] >= bounds[step["threshold"]], "a claim on the very items is wider"


def test_the_dataset_guarantee_needs_unreviewed_items(reviewed_log):
    result = CliRunner().invoke(
        app,
        ["calibrate", "--db", str(reviewed_log), "--target-error", "0.1", "--guarantee", "dataset"],
    )
    assert result.exit_code == 1
    assert "--guarantee dataset has no unreviewed items" in " ".join(result.output.split())


def test_calibrate_prints_the_held_out_check_the_stored_rule_and_what_moved(reviewed_log):
    args = ["calibrate", "--db", str(reviewed_log), "--target-error", "0.15", "--apply"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "held-out check:" in text and "accepted, error" in text
    assert "stored as cal-" in text and "new decisions of this model use it" in text
    assert "re-routed:" in text and "need new model calls" not in text
