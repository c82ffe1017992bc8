"""A cascade of models: each stage decides what it is sure of and passes the rest on."""

import json
from pathlib import Path

import duckdb
import pytest
from conftest import GUIDELINES, rows, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from agent.calibration.rule import Thresholds
from agent.cascade import Stage, cascade_key, check_stages, stage_models
from agent.cli import app
from agent.errors import ConfigError, ProviderUnreachable
from agent.guidelines import load_guideline
from agent.pipeline import Labeler, RunSettings
from agent.records import Sample, SampleRequest
from agent.simserver import SimConfig, SimServer

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


def gold_table(n: int) -> dict[str, dict]:
    """Cheap is sure of the first half; middle of items 50-79; strong of everything but 90-99."""
    sure, unsure = {"positive": 1.0}, {
        "positive": 0.4, "negative": 0.35, "neutral": 0.25}  # fmt: skip
    table = {}
    for i in range(n):
        table[f"t{i}"] = {
            "label": "positive",
            "probs": {
                "cheap": sure if i < 50 else unsure,
                "middle": sure if i < 80 else unsure,
                "strong": sure if i < 90 else unsure,
            },
        }
    return table


def cli_label(db: Path, path: Path, url: str, *extra: str) -> object:
    args = ["label", str(path), "-g", str(GUIDELINES / "sentiment.md"), "--db", str(db)]
    args += ["--model", "openai/cheap", "--escalate-to", "openai/middle"]
    args += ["--escalate-to", "openai/strong", "--api-base", url, "--mode", "json", *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture
def server():
    with SimServer(SimConfig(gold=gold_table(100), seed=1)) as running:
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
