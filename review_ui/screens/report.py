"""The evaluation: each annotator against the reference, agreement among the humans, calibration,
prevalence and cost, with the same tables and figures as the HTML report (evals/report.py)."""

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st
from matplotlib.figure import Figure

from labelagent.evals import report
from labelagent.review_ui import render, views

RESULT_KEY = "report_result"  # test hook: a result put here is shown instead of evaluating the db
EMPTY = (
    "Nothing to evaluate yet: no guideline has independent human labels. Run "
    "`labelagent import-labels` with a file of human labels, or review blind items in the queue "
    "first."
)


@st.cache_data(ttl=30, show_spinner="Comparing annotators…")
def evaluation(db: str) -> dict[str, Any]:
    """`labelagent.evals.evaluate.evaluate(db)` as the mapping the report reads, recomputed at
    most every 30 seconds.
    Imported on first use, so the other pages never load the evaluation code and its statistics
    libraries."""
    from labelagent.evals.evaluate import evaluate

    return evaluate(db).as_dict()


def titles(guidelines: list[Mapping[str, Any]]) -> list[str]:
    """Guideline names, with the hash's start where two versions of a guideline share a name."""
    names = [str(g.get("guideline", "")) for g in guidelines]
    return [
        name if names.count(name) == 1 else f"{name} ({str(g.get('guideline_hash', ''))[:8]})"
        for name, g in zip(names, guidelines, strict=True)
    ]


def pairs(rows: list[tuple[str, str]]) -> None:
    """`name: value` lines; annotator names and labels come from the log, so all is verbatim."""
    st.html(render.list_html([f"{name}: {value}" for name, value in rows]))


def table(rows: list[dict[str, Any]]) -> None:
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def pick(figures: Mapping[str, Figure], *names: str) -> list[Figure]:
    return [figures[name] for name in names if name in figures]


def draw(figures: list[Figure]) -> None:
    """Figures two to a row."""
    for start in range(0, len(figures), 2):
        for column, fig in zip(st.columns(2), figures[start : start + 2], strict=False):
            with column:
                st.pyplot(fig)


def calibration(guideline: Mapping[str, Any], figures: dict[str, Figure]) -> None:
    st.subheader("Calibration", anchor=False)
    found = guideline.get("calibration")
    if not found:
        st.caption("No calibration for this guideline.")
        return
    views.verbatim(
        f"How often {found.get('annotator', '')} is right at each level of its "
        f"{found.get('signal', '')}, and what auto-accepting above a threshold would cost in "
        "errors."
    )
    kind = "success" if found.get("status") == "rule" else "warning"
    st.html(render.alert_html(kind, str(found.get("message", ""))))
    pairs(report.rule_rows(found.get("rule")))
    draw(pick(figures, "reliability", "risk_coverage"))


def trusted_cost(guideline: Mapping[str, Any]) -> None:
    """Cost per trusted label (agent/costs.py), as in the HTML report."""
    rows = report.trusted_cost_rows(guideline)
    if not rows:
        return
    st.subheader("Cost per trusted label", anchor=False)
    st.caption(
        "Model spend from the drafts; reviewer time from seconds on screen in this app, at the "
        "log's reviewer_cost_per_hour. People alone: every item at the median seconds per review."
    )
    pairs(rows)
    spend = report.spend_rows(guideline)
    if spend:
        table(spend)
    figure = report.trusted_cost_figure(guideline)
    if figure is not None:
        draw([figure])


def show(db: str) -> None:
    st.title("Report")
    result = st.session_state.get(RESULT_KEY)
    if result is None:
        result = evaluation(db)
    guidelines = result.get("guidelines") or []
    if not guidelines:
        st.info(EMPTY)
        return
    for note in report.notes(result):
        views.verbatim(note)
    options = titles(guidelines)
    chosen = st.selectbox("Guideline", options, key="report_guideline")
    guideline = guidelines[options.index(chosen)]
    figures = report.figures(guideline)
    views.verbatim(
        f"Task {guideline.get('task', '')} · hash {guideline.get('guideline_hash', '')} · "
        f"{guideline.get('n_items', 0)} items, {guideline.get('n_reference_items', 0)} "
        f"with a reference label · reference {guideline.get('reference', '')}"
    )
    if guideline.get("seen_model_label"):
        st.caption(
            f"{guideline['seen_model_label']} reviews left out: the reviewer saw the model's label."
        )

    st.subheader("Annotators against the reference", anchor=False)
    table(report.comparison_rows(guideline))
    st.caption(
        "Each figure is the estimate with its interval in brackets. Inside human range: whether a "
        "model's accuracy and kappa fall within the range of the human annotators' own figures."
    )
    agreement = report.human_agreement_rows(guideline)
    if agreement:
        st.subheader("Agreement among humans", anchor=False)
        pairs(agreement)

    per_label = report.per_label_rows(guideline)
    confusions = [fig for name, fig in figures.items() if name.startswith("confusion:")]
    by_label = [*pick(figures, "agreement_by_label"), *confusions]
    if per_label or by_label:
        st.subheader("By label", anchor=False)
        if per_label:
            table(per_label)
        draw(by_label)

    calibration(guideline, figures)

    prevalence = report.prevalence_rows(guideline)
    if prevalence:
        st.subheader("Prevalence", anchor=False)
        st.caption(
            "Share of items with each label: from the LLM labels alone, from the human reference "
            f"alone, and by {report.PPI_REFERENCE}, which corrects the LLM labels with the "
            "reference items' human labels."
        )
        table(prevalence)
        draw(pick(figures, "prevalence"))

    cost = report.cost_rows(guideline)
    if cost:
        st.subheader("Cost", anchor=False)
        pairs(cost)
        draw(pick(figures, "cost"))

    trusted_cost(guideline)
    teaching = report.teaching_rows(guideline)
    if teaching:
        st.subheader("Examples from reviews", anchor=False)
        st.caption(report.TEACHING_NOTE)
        table(teaching)


show(views.db_path())
