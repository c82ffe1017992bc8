"""A cascade of models: each stage decides what it is sure of and passes the rest on."""

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import GUIDELINES, rows, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from labelagent.calibration.cascade import (
    CascadeExample,
    calibrate_cascade,
    family,
    select_stages,
    summary,
)
from labelagent.calibration.learn import split
from labelagent.calibration.rule import Thresholds
from labelagent.cascade import Stage, cascade_key, check_stages, stage_models, stage_thresholds
from labelagent.cli import app
from labelagent.errors import ConfigError, ProviderUnreachable
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Sample, SampleRequest
from labelagent.review.queue import claim, set_settings
from labelagent.simserver import SimConfig, SimServer

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
SPLIT = ("positive", "negative")


def items(tmp_path: Path, n: int) -> Path:
    return write_jsonl(
        tmp_path / "items.jsonl", [{"id": f"t{i}", "text": f"tweet {i}"} for i in range(n)]
    )


def run(db: Path, path: Path, *stages: FakeBackend, calibration_share: float = 0.0) -> object:
    no_audit = Thresholds(audit_share=0.0)
    labeler = Labeler(
        db,
        SENTIMENT,
        [stages[0]],
        RunSettings(calibration_share=calibration_share),
        no_audit,
        escalate_to=[Stage([b], no_audit) for b in stages[1:]],
    )
    return labeler.run(path)


def three_stages() -> tuple[FakeBackend, FakeBackend, FakeBackend]:
    """The cheap model is sure of t0 only, the middle one of t1, nobody of t2."""
    cheap = FakeBackend("cheap", default="positive", by_item={"t1": SPLIT, "t2": SPLIT})
    middle = FakeBackend("middle", default="negative", by_item={"t2": SPLIT})
    strong = FakeBackend("strong", default=SPLIT)
    return cheap, middle, strong


def test_each_item_is_decided_by_the_first_stage_sure_of_it(tmp_path, db):
    cheap, middle, strong = three_stages()
    progress = run(db, items(tmp_path, 3), cheap, middle, strong)
    assert progress.auto == 2 and progress.escalated == 1
    decided = rows(db, "SELECT item_id, model, stage, route, label FROM decisions ORDER BY 1")
    assert decided == [
        ("t0", "cheap>middle>strong", 0, "auto", '"positive"'),
        ("t1", "cheap>middle>strong", 1, "auto", '"negative"'),
        ("t2", "cheap>middle>strong", 2, "escalated", '"positive"'),
    ]
    tried = json.loads(rows(db, "SELECT stages_tried FROM decisions WHERE item_id = 't2'")[0][0])
    assert [(s["models"], s["route"], s["reasons"]) for s in tried] == [
        (["cheap"], "next", ["low_agreement"]),
        (["middle"], "next", ["low_agreement"]),
        (["strong"], "escalated", ["low_agreement"]),
    ]
    asked = {b.name: sorted({r.item.item_id for r in b.history}) for b in (cheap, middle, strong)}
    assert asked == {"cheap": ["t0", "t1", "t2"], "middle": ["t1", "t2"], "strong": ["t2"]}
    assert rows(db, "SELECT DISTINCT model FROM drafts ORDER BY 1") == [
        ("cheap",), ("middle",), ("strong",)
    ], "every stage's drafts stay in the log"  # fmt: skip


def test_calibration_items_go_through_every_stage_and_keep_the_first_stage_sure(tmp_path, db):
    cheap, middle, strong = three_stages()
    run(db, items(tmp_path, 3), cheap, middle, strong, calibration_share=1.0)
    assert len(strong.history) >= 3, "every item reached the last stage"
    assert rows(db, "SELECT item_id, stage, route FROM decisions ORDER BY 1") == [
        ("t0", 0, "auto"),
        ("t1", 1, "auto"),
        ("t2", 2, "escalated"),
    ]
    assert rows(db, "SELECT min(json_array_length(stages_tried)) FROM decisions") == [(3,)]


class Down(FakeBackend):
    """A model whose provider does not answer."""

    async def sample(self, request: SampleRequest) -> list[Sample]:
        self.history.append(request)
        return [Sample(model=self.name, unanswered="provider", error="down")] * request.n


def test_a_resumed_run_goes_on_at_the_stage_it_stopped_and_pays_no_draft_twice(tmp_path, db):
    path = items(tmp_path, 3)
    cheap, middle, _ = three_stages()
    with pytest.raises(ProviderUnreachable):
        run(db, path, cheap, middle, Down("strong"))
    assert rows(db, "SELECT count(*) FROM decisions") == [(2,)]
    assert rows(db, "SELECT item_id, model FROM retries") == [("t2", "cheap>middle>strong")]
    again = three_stages()
    progress = run(db, path, *again)
    assert progress.done == 1 and progress.skipped == 2
    assert again[0].history == [] and again[1].history == [], "t2's stored drafts were reused"
    assert {r.item.item_id for r in again[2].history} == {"t2"}
    assert rows(db, "SELECT count(*) FROM retries") == [(0,)]


def test_a_model_named_twice_is_refused():
    with pytest.raises(ConfigError, match="'b' is named twice"):
        check_stages([["a", "b"], ["b"]])
    with pytest.raises(ConfigError, match="cannot contain"):
        check_stages([["a"], ["x>y"]])


def test_a_cascade_is_named_by_its_stages():
    assert cascade_key([["a"]]) == "a"
    assert cascade_key([["a", "j"], ["b"]]) == "a+j>b"
    assert stage_models("a+j>b") == [["a", "j"], ["b"]]


def gold_table(n: int, cheap: int, middle: int, strong: int) -> dict[str, dict]:
    """Every item is positive; each model is sure (and right) of the items below its bound, and
    unsure, leaning to a wrong label, of the rest."""
    sure = {"positive": 1.0}
    unsure = {"negative": 0.45, "positive": 0.3, "neutral": 0.25}
    bounds = {"cheap": cheap, "middle": middle, "strong": strong}
    return {
        f"t{i}": {
            "label": "positive",
            "probs": {m: sure if i < bound else unsure for m, bound in bounds.items()},
        }
        for i in range(n)
    }


def cli_label(db: Path, path: Path, url: str, *extra: str) -> object:
    args = ["label", str(path), "-g", str(GUIDELINES / "sentiment.md"), "--db", str(db)]
    args += ["--model", "openai/cheap", "--escalate-to", "openai/middle"]
    args += ["--escalate-to", "openai/strong", "--api-base", url, "--mode", "json", *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture
def server():
    with SimServer(SimConfig(gold=gold_table(100, 50, 80, 90), seed=1)) as running:
        yield running


def requests_by_model(server: SimServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for body in server.history:
        counts[body["model"]] = counts.get(body["model"], 0) + 1
    return counts


def test_a_three_stage_run_through_the_cli(tmp_path, db, server):
    path = items(tmp_path, 100)
    result = cli_label(db, path, server.url, "--audit-share", "0", "--calibration-share", "0")
    assert result.exit_code == 0, result.output
    by_stage = rows(db, "SELECT stage, route, count(*) FROM decisions GROUP BY ALL ORDER BY ALL")
    assert by_stage == [(0, "auto", 50), (1, "auto", 30), (2, "auto", 10), (2, "escalated", 10)]
    reached = rows(db, "SELECT model, count(DISTINCT item_id) FROM drafts GROUP BY 1 ORDER BY 1")
    assert dict(reached) == {"openai/cheap": 100, "openai/middle": 50, "openai/strong": 20}


def test_a_run_resumed_mid_cascade_through_the_cli_requests_only_what_is_missing(
    tmp_path, db, server
):
    path = items(tmp_path, 100)
    assert cli_label(db, path, server.url, "--audit-share", "0").exit_code == 0
    before = requests_by_model(server)
    # as if killed after the first two stages' drafts were written, before the last stage
    assert rows(db, "SELECT count(*) FROM drafts WHERE model = 'openai/strong'")[0][0] > 0
    con = duckdb.connect(str(db))
    con.execute(
        "DELETE FROM decisions WHERE item_id IN"
        " (SELECT item_id FROM drafts WHERE model = 'openai/strong')"
    )
    con.execute("DELETE FROM drafts WHERE model = 'openai/strong'")
    con.close()
    result = cli_label(db, path, server.url, "--audit-share", "0")
    assert result.exit_code == 0, result.output
    after = requests_by_model(server)
    new = {m: after.get(m, 0) - before.get(m, 0) for m in after}
    assert new.get("cheap", 0) == 0 and new.get("middle", 0) == 0
    assert new.get("strong", 0) > 0
    assert rows(db, "SELECT count(*) FROM decisions") == [(100,)]


def test_an_unknown_or_repeated_stage_model_is_refused_before_any_call(tmp_path, db, server):
    path = items(tmp_path, 3)
    args = ["label", str(path), "-g", str(GUIDELINES / "sentiment.md"), "--db", str(db)]
    args += ["--api-base", server.url, "--model", "openai/cheap"]
    unknown = CliRunner().invoke(app, [*args, "--escalate-to", "nonsense-model"])
    assert unknown.exit_code == 1 and "'nonsense-model' is unknown" in unknown.output
    twice = CliRunner().invoke(app, [*args, "--escalate-to", "openai/cheap"])
    assert twice.exit_code == 1 and "named twice" in twice.output
    assert server.history == [] and not db.exists()


def example(i: int, *stages: tuple[float | None, bool]) -> CascadeExample:
    return CascadeExample(f"i{i}", tuple(s for s, _ in stages), tuple(c for _, c in stages))


def test_the_whole_risk_goes_to_one_joint_test_of_every_stage():
    """22 sure and right items pass at C = 0.9 (bound 0.099); split across three stages (0.1/3
    each) the same items would not (bound 0.143)."""
    three = [example(i, (1.0, True), (None, False), (None, False)) for i in range(22)]
    assert select_stages(three, 0.1, 0.9).threshold == (1.0, None, None)


def test_the_thresholds_tested_are_fixed_by_the_scores_alone():
    examples = [example(i, (i / 100, True), (1 - i / 100, True)) for i in range(100)]
    flipped = [CascadeExample(e.item_id, e.scores, (False, False)) for e in examples]
    assert family(examples) == family(flipped)
    steps = family(examples)
    assert steps[0] == (0.99, 1.0) and steps[-1] == pytest.approx((0.0, 0.01)), "top first"


def test_each_stage_takes_its_own_scores_quantile_and_a_later_stage_gets_the_rest():
    """The cheap stage is sure and right on half, unsure and wrong on the other half, where the
    strong stage is sure and right: at each step both stages accept their own top share."""
    examples = [example(i, (1.0, True), (0.5, True)) for i in range(200)]
    examples += [example(i, (0.4, False), (0.95, True)) for i in range(200, 400)]
    thresholds = select_stages(examples, 0.1, 0.9).threshold
    s = summary(examples, thresholds, 0.9)
    assert (s.accepted, s.errors, s.by_stage) == (400, 0, [200, 200])


def test_the_joint_test_stops_at_the_first_step_it_cannot_pass():
    examples = [example(i, (1.0 - i / 1000, True)) for i in range(100)]
    examples += [example(i, (0.8 - i / 1000, i % 2 == 0)) for i in range(100, 200)]
    selection = select_stages(examples, 0.1, 0.9)
    failed = [step for step in selection.steps if step.upper is not None and not step.passed]
    assert len(failed) == 1 and selection.steps[-1] == failed[0]
    assert selection.chosen.upper <= 0.1 and selection.chosen.accepted >= 100


def cascade_draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three stages; each scores an item uniformly in [0.5, 1] and is right with probability
    its score, independently of the other stages."""
    scores = rng.uniform(0.5, 1.0, size=(n, 3))
    return scores, rng.random((n, 3)) < scores


def draw_examples(rng: np.random.Generator, n: int) -> list[CascadeExample]:
    scores, right = cascade_draw(rng, n)
    return [
        CascadeExample(f"i{k}", tuple(map(float, scores[k])), tuple(map(bool, right[k])))
        for k in range(n)
    ]


POPULATION = cascade_draw(np.random.default_rng(999), 200_000)


def true_cascade_error(thresholds: tuple[float, ...]) -> float:
    """The error among the items the cascade accepts, on a large draw of the same population."""
    scores, right = POPULATION
    passes = scores >= np.array(thresholds)
    accepted, first = passes.any(axis=1), passes.argmax(axis=1)
    wrong = accepted & ~right[np.arange(len(first)), first]
    return float(wrong.sum() / accepted.sum())


@pytest.mark.parametrize(("target", "confidence"), [(0.15, 0.9), (0.2, 0.8)])
def test_the_error_of_everything_accepted_exceeds_the_target_in_at_most_1_minus_c_of_draws(
    target, confidence
):
    """Also the check that the test is not needlessly strict: most draws find a rule."""
    rng = np.random.default_rng(7)
    chosen = [
        select_stages(draw_examples(rng, 300), target, confidence).threshold for _ in range(100)
    ]
    rules = [t for t in chosen if t is not None]
    over = sum(true_cascade_error(t) > target for t in rules) / len(chosen)
    assert over <= 1 - confidence and len(rules) > 75


def test_a_cascade_rule_the_held_out_items_contradict_is_refused():
    examples = [example(i, (1.0, True), (1.0, True)) for i in range(400)]
    _, held = split(examples, 0.25)
    held_ids = {e.item_id for e in held}
    drifted = [
        CascadeExample(e.item_id, e.scores, (e.item_id not in held_ids,) * 2) for e in examples
    ]
    result = calibrate_cascade(drifted, 0.1, 0.9, holdout=0.25)
    assert result.status == "refused_by_holdout" and "REFUSED" in result.message


def test_no_stage_passing_says_how_many_more_reviews_would_do():
    few = [example(i, (1.0, True), (1.0, True)) for i in range(10)]
    result = calibrate_cascade(few, 0.1, 0.9, holdout=0)
    assert result.status == "too_few" and result.more_reviews_needed > 0
    assert "more reviews" in result.message


def test_calibrate_apply_on_a_cascade_through_the_cli(tmp_path, db):
    """Every item runs through every stage and has a gold label; --apply routes the decided
    items as the rule does the calibration items, and later runs use the rule."""
    path = items(tmp_path, 200)
    guideline = GUIDELINES / "sentiment.md"
    gold = write_jsonl(
        tmp_path / "gold.jsonl", [{"id": f"t{i}", "label": "positive"} for i in range(200)]
    )
    with SimServer(SimConfig(gold=gold_table(200, 100, 180, 190), seed=1)) as server:
        extra = ("--audit-share", "0", "--calibration-share", "1")
        assert cli_label(db, path, server.url, *extra).exit_code == 0
        imported = CliRunner().invoke(
            app,
            ["import-labels", str(gold), "--annotator", "gold", "-g", str(guideline), "--db",
             str(db)],
        )  # fmt: skip
        assert imported.exit_code == 0, imported.output
        asked = len(server.history)
        result = CliRunner().invoke(
            app,
            ["calibrate", "--db", str(db), "--json", "--target-error", "0.2", "--holdout", "0",
             "--apply"],
        )  # fmt: skip
        assert len(server.history) == asked, "--apply calls no model"
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model"] == "openai/cheap>openai/middle>openai/strong"
    s = out["calibration"]
    assert out["status"] == "rule" and s["error_bound"] <= 0.2
    assert s["by_stage"][0] >= 100, "the cheap stage takes at least the items it is sure of"
    assert out["rerouted"]["needs_calls"] == 0 and out["rerouted"]["to_escalated"] >= 1
    accepted = "route = 'auto' OR CAST(reasons AS VARCHAR) = '[\"audit\"]'"  # audit: 5%
    decided = rows(
        db, f"SELECT stage, {accepted}, count(*) FROM decisions GROUP BY ALL ORDER BY ALL"
    )
    simulated = [(i, True, n) for i, n in enumerate(s["by_stage"]) if n]
    assert decided == sorted([*simulated, (2, False, 200 - s["accepted"])]), (
        "the decisions are the cascade simulated on the calibration items"
    )
    names = [["openai/cheap"], ["openai/middle"], ["openai/strong"]]
    later = stage_thresholds(db, load_guideline(guideline).content_hash, names)
    assert [(t.min_support, t.auto_accept) for t in later] == [
        (0.0, False) if t is None else (t, True) for t in out["thresholds"]
    ], "later runs route by the rule"


def test_plan_shows_each_stage_and_what_the_cascade_decided_already(tmp_path, db, server):
    path = items(tmp_path, 100)
    assert cli_label(db, path, server.url, "--audit-share", "0").exit_code == 0
    args = ["plan", str(path), "-g", str(GUIDELINES / "sentiment.md"), "--db", str(db), "--json"]
    args += ["--model", "openai/cheap", "--escalate-to", "openai/middle"]
    args += ["--escalate-to", "openai/strong"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["already_decided"] == 100 and plan["to_label"] == 0
    assert [(m["model"], m["stage"]) for m in plan["models"]] == [
        ("openai/cheap", 0), ("openai/middle", 1), ("openai/strong", 2)
    ]  # fmt: skip
    twice = CliRunner().invoke(app, [*args, "--escalate-to", "openai/cheap"])
    assert twice.exit_code == 1 and "named twice" in twice.output


def test_an_escalated_item_shows_each_stages_label_and_score_in_the_queue(tmp_path, db):
    run(db, items(tmp_path, 3), *three_stages())
    set_settings(db, "sentiment", overlap=1, blind_share=0.0)
    claimed = {item.item_id: item for item in claim(db, "ana")}
    assert claimed["t2"].stage_reasons == [
        "stage 1 (cheap): label positive, score 0.560 -> to the next stage (low agreement)",
        "stage 2 (middle): label positive, score 0.560 -> to the next stage (low agreement)",
        "stage 3 (strong): label positive, score 0.560 -> to people (low agreement)",
    ]
