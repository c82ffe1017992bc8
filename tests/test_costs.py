"""Cost per trusted label, from the log: model spend, reviewer time at a set hourly rate, cost
per final label by source, people alone at the measured pace, and the coverage-vs-cost curve."""

import json
import re
from html import unescape
from pathlib import Path

import duckdb
import litellm
import pytest
from conftest import GUIDELINES, REPO, write_jsonl
from fakes import FakeBackend
from hostile import MARKERS, hostile_text
from matplotlib.figure import Figure
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labelagent import prices
from labelagent.calibration.rule import Thresholds
from labelagent.cli import app
from labelagent.costs import CoveragePoint, SourceCost, Spend, costs, set_setting
from labelagent.errors import ConfigError
from labelagent.evals import plots
from labelagent.evals.evaluate import evaluate
from labelagent.evals.report import render_html, trusted_cost_rows
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Sample
from labelagent.review import queue
from labelagent.review_ui.views import DB_KEY
from labelagent.store.db import migrate, transaction
from labelagent.transports import cached_prompt_tokens

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")


class PricedBackend(FakeBackend):
    """Every sample costs one cent: 100 prompt tokens (40 of them cached), 10 completion."""

    def _one(self, item_id: str) -> Sample:
        sample = super()._one(item_id)
        sample.prompt_tokens, sample.cached_prompt_tokens = 100, 40
        sample.completion_tokens, sample.cost_usd = 10, 0.01
        return sample


@pytest.fixture
def reviewed_db(tmp_path: Path) -> Path:
    """Four items: t0 and t1 auto-accepted after 2 samples each, t2 and t3 escalated after 5
    each (14 samples, $0.14); a reviewer corrects t2 in 30 s and t3 in 90 s."""
    db = tmp_path / "log.duckdb"
    items = write_jsonl(
        tmp_path / "items.jsonl", [{"id": f"t{i}", "text": f"tweet {i}"} for i in range(4)]
    )
    split = ("positive", "negative")
    model = PricedBackend(by_item={"t0": "positive", "t1": "positive", "t2": split, "t3": split})
    Labeler(db, SENTIMENT, [model], RunSettings(), Thresholds(audit_share=0.0)).run(items)
    assert model.samples_drawn == 14
    for item, seconds in zip(queue.claim(db, "ann", size=5), (30.0, 90.0), strict=True):
        queue.submit(db, "ann", item, "correct", "negative", seconds_on_screen=seconds)
    return db


def test_cost_per_trusted_label_in_dollars(reviewed_db):
    set_setting(reviewed_db, "reviewer_cost_per_hour", "30")
    result = costs(reviewed_db)
    assert result.reviewer_cost_per_hour == 30.0
    [g] = result.guidelines
    assert g.spend == [Spend("fake/model", None, 14, 1400, 560, 140, 0.14)]
    assert (g.items, g.timed_reviews, g.review_seconds, g.median_seconds_per_review) == (
        4,
        2,
        120.0,
        60.0,
    )
    assert g.reviewer_cost_usd == 1.0, "120 s at $30 an hour"
    assert g.by_source == [
        SourceCost("human", 2, 1.1, 0.55),  # their items' drafts ($0.10) and every review ($1)
        SourceCost("llm", 2, 0.04, 0.02),
    ]
    assert g.per_final_label_usd == 0.285, "($0.14 + $1.00) / 4 final labels"
    assert g.people_alone_usd == 2.0, "4 items x 60 s at $30 an hour"
    assert g.curve == [
        CoveragePoint(min_agreement=0.6, coverage=1.0, total_cost_usd=0.14),
        CoveragePoint(min_agreement=1.0, coverage=0.5, total_cost_usd=1.14),
    ]


def test_without_a_rate_reviewer_time_is_counted_but_not_priced(reviewed_db):
    [g] = costs(reviewed_db).guidelines
    assert g.model_cost_usd == 0.14 and g.review_seconds == 120.0
    assert g.reviewer_cost_usd is None and g.people_alone_usd is None
    assert g.by_source[1] == SourceCost("llm", 2, 0.04, 0.02)
    assert g.by_source[0].cost_usd is None


def test_settings_are_stored_in_the_log_and_shown(reviewed_db):
    runner = CliRunner()
    saved = runner.invoke(
        app, ["settings", "set", "reviewer_cost_per_hour", "45.5", "--db", str(reviewed_db)]
    )
    assert saved.exit_code == 0, saved.output
    shown = runner.invoke(app, ["settings", "show", "--db", str(reviewed_db)])
    assert "reviewer_cost_per_hour 45.5" in " ".join(shown.output.split())
    status = json.loads(runner.invoke(app, ["status", "--db", str(reviewed_db), "--json"]).output)
    assert status["costs"]["reviewer_cost_per_hour"] == 45.5
    assert status["costs"]["guidelines"][0]["reviewer_cost_usd"] == 1.516667


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("reviewer_cost", "30", "unknown setting 'reviewer_cost'"),
        ("reviewer_cost_per_hour", "-1", "must be a number >= 0"),
        ("reviewer_cost_per_hour", "thirty", "must be a number, not 'thirty'"),
        ("reviewer_cost_per_hour", "nan", "must be a number >= 0"),
    ],
)
def test_a_bad_setting_is_refused_and_changes_nothing(reviewed_db, name, value, message):
    set_setting(reviewed_db, "reviewer_cost_per_hour", "30")
    with pytest.raises(ConfigError, match=message):
        set_setting(reviewed_db, name, value)
    assert costs(reviewed_db).reviewer_cost_per_hour == 30.0


def test_status_prints_the_costs(reviewed_db):
    set_setting(reviewed_db, "reviewer_cost_per_hour", "30")
    result = CliRunner().invoke(app, ["status", "--db", str(reviewed_db)])
    assert result.exit_code == 0, result.output
    assert "reviewers at $30/hour" in result.output
    assert "0.2850" in result.output and "2.0000" in result.output


def test_cached_prompt_tokens_are_read_from_the_usage_and_priced_lower():
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    cached = litellm.ModelResponse(
        model="gpt-4o-mini",
        usage={**usage, "prompt_tokens_details": {"cached_tokens": 800}},
    )
    plain = litellm.ModelResponse(model="gpt-4o-mini", usage=usage)
    assert cached_prompt_tokens(cached.usage) == 800
    assert cached_prompt_tokens(plain.usage) == 0
    assert cached_prompt_tokens(None) == 0
    price = litellm.model_cost["gpt-4o-mini"]
    expected = (
        200 * price["input_cost_per_token"]
        + 800 * price["cache_read_input_token_cost"]
        + 100 * price["output_cost_per_token"]
    )
    assert cached_prompt_tokens({**usage, "prompt_tokens_details": {"cached_tokens": 800}}) == 800
    assert prices.price("openai/gpt-4o-mini", 1000, 100, 800) == pytest.approx(expected)
    assert litellm.completion_cost(completion_response=cached) == pytest.approx(expected)


def test_drafts_from_before_migration_9_have_no_cached_tokens(db):
    migrate(db, target=8)
    with transaction(db) as con:
        con.execute(
            "INSERT INTO drafts (item_id, guideline_hash, prompt_hash, model, sample_index,"
            " run_id, prompt_tokens) VALUES ('a', 'g', 'p', 'm', 0, 'r', 12)"
        )
    migrate(db)
    con = duckdb.connect(str(db))
    try:
        row = con.execute("SELECT prompt_tokens, cached_prompt_tokens FROM drafts").fetchone()
    finally:
        con.close()
    assert row == (12, 0)


def test_the_html_report_shows_cost_per_trusted_label_and_the_coverage_curve(reviewed_db):
    set_setting(reviewed_db, "reviewer_cost_per_hour", "30")
    result = evaluate(reviewed_db, n_resamples=20).as_dict()
    [g] = result["guidelines"]
    assert g["cost"]["review_cost_usd"] == 1.0, "the Cost figure prices review time too"
    assert trusted_cost_rows(g) == [
        ("reviewer cost per hour", "$30.00"),
        ("model spend", "$0.1400"),
        ("reviewer time", "2 reviews, 120 s (median 60.0 s per review)"),
        ("reviewer cost", "$1.00"),
        ("per final label (4)", "$0.2850"),
        ("per human label (2)", "$0.5500"),
        ("per LLM label (2)", "$0.0200"),
        ("people alone (4 items)", "$2.00"),
    ]
    html = render_html(result)
    assert "Cost per trusted label" in html and 'alt="Coverage vs cost"' in html
    assert ">fake/model<" in html


def test_the_coverage_curve_needs_priced_points():
    curve = [{"min_agreement": 1.0, "coverage": 0.5, "total_cost_usd": 1.14}]
    assert isinstance(plots.coverage_cost(curve, 2.0), Figure)
    assert plots.coverage_cost([{**curve[0], "total_cost_usd": None}], None) is None
    assert plots.coverage_cost(None, None) is None


def test_the_report_page_shows_cost_per_trusted_label_with_names_verbatim(reviewed_db):
    set_setting(reviewed_db, "reviewer_cost_per_hour", "30")
    result = evaluate(reviewed_db, n_resamples=20).as_dict()
    result["guidelines"][0]["trusted_cost"]["spend"][0]["model"] = hostile_text(9, "model")
    at = AppTest.from_file(str(REPO / "review_ui" / "screens" / "report.py"), default_timeout=30)
    at.session_state[DB_KEY] = str(reviewed_db)
    at.session_state["report_result"] = result
    at.run()
    assert not at.exception, at.exception
    assert "Cost per trusted label" in [s.value for s in at.subheader]
    shown = unescape(re.sub(r"<[^>]+>", "", "".join(h.value for h in at.html)))
    assert "per final label (4): $0.2850" in shown
    assert "people alone (4 items): $2.00" in shown
    [spend] = [d.value for d in at.dataframe if "cached" in d.value.columns]
    assert list(spend["model"]) == [hostile_text(9, "model")]
    texts = [e.value for kind in ("markdown", "caption", "subheader") for e in at.get(kind)]
    assert not [t for t in texts if any(m in t for m in MARKERS)]
