"""The evaluation report drawn from tests/data/eval_result_example.json (what `labelagent eval
--json` prints): the self-contained HTML page, each figure, and the review app's Report page."""

import base64
import copy
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from hostile import MARKERS, RLO, hostile_text
from matplotlib.figure import Figure
from streamlit.testing.v1 import AppTest

from labelagent.evals import plots
from labelagent.evals.report import (
    comparison_rows,
    figures,
    format_estimate,
    render_html,
    write_html,
)
from labelagent.review.accounts import add_reviewer
from labelagent.review_ui import page_state
from labelagent.review_ui.views import DB_KEY

RESULT: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "eval_result_example.json").read_text()
)
CARD, RATING = RESULT["guidelines"]
MODEL = CARD["comparisons"][0]
CALIBRATION = CARD["calibration"]
PAGE = REPO / "review_ui" / "screens" / "report.py"
PNG = '<img src="data:image/png;base64,'


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(RESULT)


def test_each_guideline_has_a_section_with_its_facts(html):
    for guideline in RESULT["guidelines"]:
        assert f"<h2>{guideline['guideline']}</h2>" in html
        assert guideline["guideline_hash"] in html
    assert "task <b>classification</b>" in html and "reference <b>gold</b>" in html
    assert "<b>6</b> reviews left out: the reviewer saw the model's label" in html


def test_a_metric_reads_as_the_value_and_its_interval(html):
    assert format_estimate({"value": 0.8123, "low": 0.7412, "high": 0.871, "n": 20}) == (
        "0.812 [0.74, 0.87]"
    )
    assert format_estimate({"value": 0.5, "low": None, "high": None, "n": 3}) == "0.500"
    assert format_estimate({"value": None, "low": None, "high": None, "n": 0}) == "—"
    assert '<td class="num">0.800 [0.58, 0.92]</td>' in html  # the model's accuracy
    assert '<th scope="col">weighted kappa (helpfulness)</th>' in html


def test_humans_and_models_share_one_table_with_the_human_range(html):
    rows = comparison_rows(CARD)
    assert [(r["annotator"], r["kind"]) for r in rows] == [
        ("ann", "human"),
        ("bob", "human"),
        ("local:gemma3", "model"),
    ]
    assert [r["inside human range"] for r in rows] == ["—", "—", "no"]
    assert "0.833 to 0.850" in html  # the humans' own accuracy against the reference


def test_the_notes_say_what_counts_as_an_independent_human_label(html):
    assert "Only blind reviews and imported labels count as independent human labels" in html
    assert "prediction-powered inference (Angelopoulos et al. 2023)" in html
    bare = render_html({"generated_at": "", "db": "x.duckdb", "notes": [], "guidelines": []})
    assert "Only blind reviews and imported labels count as independent human labels" in bare
    assert "labelagent import-labels" in bare


def test_the_figures_are_embedded_and_nothing_is_fetched(html):
    assert html.count(PNG) == 7, "6 for card_support, the cost figure for answer_quality"
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|iframe)\b", html)
    for address in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert address.startswith(("data:", "#")), address


def test_text_from_the_labels_is_escaped():
    result = copy.deepcopy(RESULT)
    card = result["guidelines"][0]
    card["labels"][0] = "<b>x</b>"
    card["prevalence"][0]["label"] = "<b>x</b>"
    card["comparisons"][0]["annotator"] = "<script>alert(1)</script>"
    html = render_html(result)
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>" not in html and "<script" not in html


def test_write_html_writes_one_file(tmp_path):
    path = write_html(RESULT, tmp_path / "report.html")
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


TEACHING = [
    {"model": "local:gemma3", "trusted_labels": 0, "selector": "none", "examples": 0,
     "coverage": 0.4, "accuracy": 0.55},
    {"model": "local:gemma3", "trusted_labels": 250, "selector": "similar", "examples": 8,
     "coverage": 0.5, "accuracy": 0.62},
    {"model": "local:gemma3", "trusted_labels": 1000, "selector": "similar", "examples": 8,
     "coverage": 0.6, "accuracy": None},
]  # fmt: skip
PLOTS = [
    (plots.reliability_diagram, (CALIBRATION["reliability"], "agreement"), ({"bins": []},)),
    (plots.risk_coverage, (CALIBRATION["risk_coverage"], 0.3, CALIBRATION["rule"]), ([],)),
    (plots.confusion_matrix, (MODEL["confusion"], "local:gemma3 against humans"), (None, "-")),
    (plots.agreement_by_label, (CARD["comparisons"], CARD["labels"]), (RATING["comparisons"], [])),
    (plots.prevalence, (CARD["prevalence"],), ([],)),
    (plots.cost, (CARD["cost"],), (None,)),
    (plots.teaching_loop, (TEACHING,), ([],)),
]


@pytest.mark.parametrize(("plot", "data", "empty"), PLOTS, ids=[p[0].__name__ for p in PLOTS])
def test_each_plot_draws_the_example_and_skips_missing_data(plot, data, empty):
    fig = plot(*data)
    assert isinstance(fig, Figure)
    assert fig.get_suptitle() or any(ax.get_title() for ax in fig.axes)
    assert plot(*empty) is None


def test_a_figure_becomes_a_png_data_uri():
    uri = plots.figure_to_data_uri(plots.cost(RATING["cost"]))
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.partition(",")[2]).startswith(b"\x89PNG")


def test_a_guideline_gets_the_figures_it_has_data_for():
    assert list(figures(CARD)) == [
        "confusion:local:gemma3",
        "agreement_by_label",
        "reliability",
        "risk_coverage",
        "prevalence",
        "cost",
    ]
    assert list(figures(RATING)) == ["cost"]


def report_page(result: dict[str, Any], db: str = "unused.duckdb") -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.session_state[DB_KEY] = db
    at.session_state["report_result"] = result
    return at.run()


def alert(at: AppTest, kind: str) -> str:
    """The text of the page's verbatim message box of `kind` (success or warning)."""
    [box] = [h.value for h in at.html if f'class="message {kind}"' in h.value]
    return unescape(re.sub(r"<[^>]+>", "", box))


def test_the_report_page_shows_the_table_and_the_figures():
    at = report_page(RESULT)
    assert not at.exception, at.exception
    assert at.selectbox(key="report_guideline").value == "card_support"
    table = at.dataframe[0].value
    assert list(table["annotator"]) == ["ann", "bob", "local:gemma3"]
    model = table[table["annotator"] == "local:gemma3"]
    assert model["accuracy"].item() == "0.800 [0.58, 0.92]"
    assert len(at.image) == 6
    assert alert(at, "success").startswith("Auto-accept items")

    at.selectbox(key="report_guideline").select("answer_quality").run()
    assert not at.exception, at.exception
    assert "weighted kappa (helpfulness)" in at.dataframe[0].value.columns
    assert alert(at, "warning") == RATING["calibration"]["message"]
    assert len(at.image) == 1


def test_an_empty_result_says_how_to_get_human_labels():
    at = report_page({"generated_at": "", "db": "x.duckdb", "notes": [], "guidelines": []})
    assert not at.exception, at.exception
    assert "labelagent import-labels" in at.info[0].value
    assert not at.selectbox and not at.dataframe


def test_signed_in_users_have_the_report_page(tmp_path):
    db = tmp_path / "log.duckdb"
    add_reviewer(db, "ann", "reviewer", "ann-secret-1")
    at = AppTest.from_file(str(REPO / "review_ui" / "app.py"), default_timeout=30)
    at.session_state[DB_KEY] = str(db)
    page_state.sign_in(at.session_state, db, "ann", "ann-secret-1", client="local")
    at.session_state["report_result"] = RESULT
    at.run().switch_page("screens/report.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Report"


def test_the_report_page_shows_names_notes_and_messages_from_the_log_verbatim():
    hostile = copy.deepcopy(RESULT)
    hostile["notes"] = [hostile_text(9, "note")]
    card = hostile["guidelines"][0]
    card["reference"] = hostile_text(9, "reference")
    card["calibration"]["annotator"] = hostile_text(9, "annotator")
    card["calibration"]["message"] = hostile_text(9, "message")
    at = report_page(hostile)
    assert not at.exception, at.exception
    texts = [
        e.value for kind in ("markdown", "caption", "title", "subheader") for e in at.get(kind)
    ]
    texts += [e.value for kind in (at.info, at.warning, at.error, at.success) for e in kind]
    assert not [t for t in texts if any(m in t for m in MARKERS)]
    assert alert(at, "success") == hostile_text(9, "message").replace(RLO, "[U+202E]")
    shown = unescape(re.sub(r"<[^>]+>", "", "".join(h.value for h in at.html)))
    for tag in ("note", "reference", "annotator"):
        assert hostile_text(9, tag).replace(RLO, "[U+202E]") in shown, tag
