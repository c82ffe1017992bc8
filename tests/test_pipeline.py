"""The labeling loop end to end with a scripted backend: routing, resuming, budgets, juries."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import GUIDELINES, REPO, rows, write_jsonl
from fakes import FakeBackend

from labelagent.calibration.rule import Thresholds
from labelagent.errors import BudgetExceeded, InputError
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")


def items(tmp_path: Path, n: int = 10) -> Path:
    return write_jsonl(
        tmp_path / "items.jsonl", [{"id": f"t{i}", "text": f"tweet {i}"} for i in range(n)]
    )


def label(db: Path, path: Path, *backends: FakeBackend, **settings) -> object:
    thresholds = Thresholds(audit_share=settings.pop("audit_share", 0.0))
    labeler = Labeler(db, SENTIMENT, list(backends), RunSettings(**settings), thresholds)
    return labeler.run(path)


def test_clear_items_are_accepted_and_cost_fewer_samples(tmp_path, db):
    model = FakeBackend(default="positive")
    progress = label(db, items(tmp_path), model)
    assert progress.auto == 10 and progress.escalated == 0
    assert model.samples_drawn == 20, "two agreeing samples settle a clear item"
    assert rows(db, "SELECT DISTINCT label FROM final_labels") == [('"positive"',)]


def test_the_log_keeps_the_whole_guideline_file_the_labels_were_made_under(tmp_path, db):
    label(db, items(tmp_path, 1), FakeBackend(default="positive"))
    stored = rows(db, "SELECT guideline_hash, content FROM guidelines")
    assert stored == [(SENTIMENT.content_hash, (GUIDELINES / "sentiment.md").read_text())]


def test_every_item_is_stored_when_many_workers_flush_at_once(tmp_path, db):
    model = FakeBackend(default="positive")
    labeler = Labeler(
        db, SENTIMENT, [model], RunSettings(flush_items=3), Thresholds(), concurrency=16
    )
    progress = labeler.run(items(tmp_path, 300))
    assert progress.done == 300
    assert rows(db, "SELECT count(*), count(DISTINCT item_id) FROM decisions") == [(300, 300)]
    assert rows(db, "SELECT count(*) FROM drafts") == [(600,)]


def test_a_split_vote_is_escalated_with_its_reason(tmp_path, db):
    model = FakeBackend(default="positive")
    model.enqueue("positive", "negative", "negative", "positive", "neutral")
    label(db, items(tmp_path, 1), model)
    decision = rows(db, "SELECT route, reasons, agreement, n_samples FROM decisions")
    assert decision == [("escalated", '["low_agreement"]', 0.4, 5)]
    assert rows(db, "SELECT count(*) FROM final_labels") == [(0,)], (
        "no final label until a person gives one"
    )


def test_failed_samples_are_failures_never_labels(tmp_path, db):
    model = FakeBackend(default="error: invalid answer: 'great' is not one of the labels")
    label(db, items(tmp_path, 2), model)
    assert rows(db, "SELECT DISTINCT route, reasons, label FROM decisions") == [
        ("escalated", '["model_failed"]', None)
    ]
    assert rows(db, "SELECT count(*), count(label), count(error) FROM drafts") == [(10, 0, 10)]


def test_rerunning_skips_decided_items_and_pays_nothing(tmp_path, db):
    path = items(tmp_path)
    label(db, path, FakeBackend(default="neutral"))
    again = FakeBackend(default="neutral")
    progress = label(db, path, again)
    assert progress.skipped == 10 and progress.done == 0
    assert again.history == []
    assert rows(db, "SELECT count(*) FROM decisions") == [(10,)]


def test_stored_drafts_are_reused_not_requested_again(tmp_path, db):
    path = items(tmp_path, 1)
    label(db, path, FakeBackend(default="positive"), samples=5, stop_confidence=1.0)
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM decisions")  # as if the run was killed before the decision was written
    con.execute("DELETE FROM drafts WHERE sample_index >= 2")
    con.close()
    resumed = FakeBackend(default="positive")
    label(db, path, resumed, samples=5, stop_confidence=1.0)
    assert resumed.samples_drawn == 1, "2 stored + 1 new settle 3 of 5"
    assert rows(db, "SELECT count(*), count(DISTINCT sample_index) FROM drafts") == [(3, 3)]


def test_a_new_model_replaces_the_decision_and_keeps_history(tmp_path, db):
    path = items(tmp_path, 3)
    label(db, path, FakeBackend(name="old/model", default="negative"))
    label(db, path, FakeBackend(name="new/model", default="positive"))
    assert rows(db, "SELECT DISTINCT model, label FROM decisions") == [("new/model", '"positive"')]
    assert rows(db, "SELECT count(*), min(model) FROM decisions_history") == [(3, "old/model")]


def test_jury_disagreement_escalates(tmp_path, db):
    main = FakeBackend("main/model", default="positive")
    agrees = FakeBackend("juror/agrees", default="positive")
    dissents = FakeBackend("juror/dissents", default="positive", by_item={"t1": "negative"})
    label(db, items(tmp_path, 2), main, agrees, dissents)
    decisions = rows(
        db, "SELECT item_id, route, reasons, disagreeing_models FROM decisions ORDER BY 1"
    )
    assert decisions[0] == ("t0", "auto", "[]", "[]")
    assert decisions[1][1] == "escalated" and "jury_disagreement" in decisions[1][2]
    assert decisions[1][3] == '["juror/dissents"]'


def test_limit_labels_only_the_first_items(tmp_path, db):
    progress = label(db, items(tmp_path, 10), FakeBackend(default="positive"), limit=3)
    assert progress.done == 3
    assert rows(db, "SELECT item_id FROM decisions ORDER BY 1") == [("t0",), ("t1",), ("t2",)]
    assert rows(db, "SELECT item_id FROM items ORDER BY 1") == [("t0",), ("t1",), ("t2",)]


class PricedBackend(FakeBackend):
    async def sample(self, request):
        samples = await super().sample(request)
        for s in samples:
            s.cost_usd = 0.01
        return samples


def test_budget_stops_starting_new_items_and_keeps_finished_ones(tmp_path, db):
    with pytest.raises(BudgetExceeded, match="budget"):
        label(db, items(tmp_path, 50), PricedBackend(default="positive"), budget_usd=0.1)
    decided = rows(db, "SELECT count(*) FROM decisions")[0][0]
    assert 5 <= decided < 50
    assert rows(db, "SELECT status FROM runs") == [("stopped",)]


def test_a_run_stopped_early_still_logs_every_item_of_its_input(tmp_path, db):
    """Items go into the log chunk by chunk as they are labeled; a stop adds the rest."""
    with pytest.raises(BudgetExceeded):
        label(
            db, items(tmp_path, 50), PricedBackend(default="positive"), budget_usd=0.1, chunk_size=5
        )
    assert rows(db, "SELECT count(*) FROM decisions")[0][0] < 50
    assert rows(db, "SELECT count(*) FROM items") == [(50,)]


def test_audit_share_sends_would_be_auto_items_to_review(tmp_path, db):
    label(db, items(tmp_path, 200), FakeBackend(default="positive"), audit_share=0.2)
    audited = rows(db, "SELECT count(*) FROM decisions WHERE reasons = '[\"audit\"]'")[0][0]
    assert 20 <= audited <= 60


def test_bad_input_stops_before_any_call_and_leaves_the_database_alone(tmp_path, db):
    label(db, items(tmp_path, 3), FakeBackend(default="positive"))
    before = rows(db, "SELECT count(*) FROM items UNION ALL SELECT count(*) FROM runs")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x1", "text": "ok"}\n{"id": "x2", "text": \n', encoding="utf-8")
    model = FakeBackend(default="positive")
    with pytest.raises(InputError, match=r"bad.jsonl, line 2"):
        label(db, bad, model)
    assert model.history == []
    assert rows(db, "SELECT count(*) FROM items UNION ALL SELECT count(*) FROM runs") == before


def test_an_id_reused_with_other_content_is_refused(tmp_path, db):
    label(db, items(tmp_path, 3), FakeBackend(default="positive"))
    other = write_jsonl(
        tmp_path / "other.jsonl", [{"id": "new", "text": "a"}, {"id": "t1", "text": "changed"}]
    )
    model = FakeBackend(default="positive")
    with pytest.raises(
        InputError, match=r"other.jsonl, line 2: id 't1' is already in the database"
    ):
        label(db, other, model)
    assert model.history == []
    assert rows(db, "SELECT count(*) FROM items") == [(3,)]


def test_an_id_reused_with_other_content_far_into_the_file_changes_nothing(tmp_path, db):
    """The ids are checked before the first chunk of items goes into the log."""
    label(db, items(tmp_path, 3), FakeBackend(default="positive"))
    new = [{"id": f"n{i}", "text": "new"} for i in range(7)]
    other = write_jsonl(tmp_path / "other.jsonl", [*new, {"id": "t1", "text": "changed"}])
    model = FakeBackend(default="positive")
    with pytest.raises(InputError, match=r"other.jsonl, line 8: id 't1' is already"):
        label(db, other, model, chunk_size=2)
    assert model.history == []
    assert rows(db, "SELECT count(*) FROM items UNION ALL SELECT count(*) FROM runs") == [
        (3,),
        (1,),
    ]


LABELING_RUN = """
import sys
from pathlib import Path

sys.path.insert(0, "tests")
import labelagent.cli, labelagent.llm
from fakes import FakeBackend
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.calibration.rule import Thresholds

db, items = Path(sys.argv[1]), Path(sys.argv[2])
guideline = load_guideline(Path("guidelines/sentiment.md"))
Labeler(db, guideline, [FakeBackend(default="positive")], RunSettings(), Thresholds()).run(items)
heavy = ("pandas", "pyarrow", "numpy", "scipy", "sklearn", "streamlit")
print(" ".join(name for name in heavy if name in sys.modules))
"""


def test_a_labeling_run_imports_no_dataframe_or_app_libraries(tmp_path):
    """They cost memory on every run (pyarrow alone pulls in pandas, ~80 MB); labeling uses none."""
    command = [
        sys.executable,
        "-c",
        LABELING_RUN,
        str(tmp_path / "log.duckdb"),
        str(items(tmp_path)),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
