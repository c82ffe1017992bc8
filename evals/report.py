"""An evaluation result (the dict `labelagent.evals.evaluate.evaluate` returns) as one
self-contained HTML page, and the figures and tables the review app's Report page shares with it.

The page needs nothing beside itself: the CSS is inline and the figures are PNG data URIs, so it
can be mailed or attached to a ticket. Tables are built here as plain rows, so the template and
the Streamlit page show the same text.
"""

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.figure import Figure

from labelagent.evals import plots

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
INDEPENDENCE_NOTE = (
    "Only blind reviews and imported labels count as independent human labels: a reviewer who "
    "saw the model's label is not an independent check of it."
)
PPI_REFERENCE = "prediction-powered inference (Angelopoulos et al. 2023)"
METRIC_TITLES = {
    "accuracy": "accuracy",
    "cohen_kappa": "Cohen's kappa",
    "weighted_kappa": "weighted kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
    "gwet_ac1": "Gwet's AC1",
    "mean_abs_diff": "mean abs. difference",
    "exact_f1": "exact-match F1",
    "overlap_f1": "overlap F1",
}
NO_VALUE = "—"

Result = Mapping[str, Any]


def format_estimate(estimate: Mapping[str, Any] | None) -> str:
    """`0.812 [0.74, 0.87]`; the value alone when there is no interval, a dash when no value."""
    if not estimate or estimate.get("value") is None:
        return NO_VALUE
    text = f"{estimate['value']:.3f}"
    low, high = estimate.get("low"), estimate.get("high")
    if low is not None and high is not None:
        text += f" [{low:.2f}, {high:.2f}]"
    return text


def metric_title(key: str) -> str:
    """A column title for a metric key: `weighted_kappa:helpfulness` is `weighted kappa
    (helpfulness)`; unknown names are shown with spaces for underscores."""
    name, _, part = key.partition(":")
    title = METRIC_TITLES.get(name, name.replace("_", " "))
    return f"{title} ({part})" if part else title


def metric_names(guideline: Result) -> list[str]:
    """Every metric key of the guideline's comparisons, in the order they first appear."""
    names: list[str] = []
    for comparison in guideline.get("comparisons") or []:
        names += [k for k in comparison.get("metrics") or {} if k not in names]
    return names


def _ordered_comparisons(guideline: Result) -> list[Mapping[str, Any]]:
    """Human annotators first, then the models, so the models read against the humans."""
    comparisons = guideline.get("comparisons") or []
    return sorted(comparisons, key=lambda c: c.get("kind") != "human")


def _in_human_range(guideline: Result, comparison: Mapping[str, Any]) -> str:
    inside = (guideline.get("inside_human_range") or {}).get(comparison.get("annotator"))
    if comparison.get("kind") == "human" or inside is None:
        return NO_VALUE
    return "yes" if inside else "no"


def comparison_rows(guideline: Result) -> list[dict[str, Any]]:
    """One row per annotator against the reference: kind, items, each metric as text."""
    names = metric_names(guideline)
    rows = []
    for comparison in _ordered_comparisons(guideline):
        metrics = comparison.get("metrics") or {}
        rows.append(
            {
                "annotator": comparison.get("annotator", ""),
                "kind": comparison.get("kind", ""),
                "n": comparison.get("n", 0),
                **{metric_title(name): format_estimate(metrics.get(name)) for name in names},
                "inside human range": _in_human_range(guideline, comparison),
            }
        )
    return rows


def per_label_rows(guideline: Result) -> list[dict[str, Any]]:
    """Precision, recall and F1 of each annotator for each label, grouped by label."""
    comparisons = [c for c in _ordered_comparisons(guideline) if c.get("per_label")]
    labels = list(guideline.get("labels") or [])
    for comparison in comparisons:
        labels += [label for label in comparison["per_label"] if label not in labels]
    rows = []
    for label in labels:
        for comparison in comparisons:
            scores = comparison["per_label"].get(label)
            if scores is None:
                continue
            rows.append(
                {
                    "label": label,
                    "annotator": comparison.get("annotator", ""),
                    "precision": format_estimate(scores.get("precision")),
                    "recall": format_estimate(scores.get("recall")),
                    "F1": format_estimate(scores.get("f1")),
                    "support": scores.get("support", ""),
                }
            )
    return rows


def prevalence_rows(guideline: Result) -> list[dict[str, Any]]:
    rows = []
    for row in guideline.get("prevalence") or []:
        llm = row.get("llm_share")
        rows.append(
            {
                "label": row.get("label", ""),
                "LLM labels only": NO_VALUE if llm is None else f"{llm:.3f}",
                "humans only": format_estimate(row.get("human_share")),
                "PPI": format_estimate(row.get("ppi")),
            }
        )
    return rows


def _share(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.1%}"


def teaching_rows(guideline: Result) -> list[dict[str, Any]]:
    """Accuracy and coverage per model and example setting, fewest trusted labels first."""
    return [
        {
            "model": row["model"],
            "trusted labels": row["trusted_labels"],
            "examples": "none" if not row["examples"] else f"{row['examples']} {row['selector']}",
            "decided": row["decided"],
            "with reference": row["with_reference"],
            "coverage": _share(row["coverage"]),
            "accuracy": _share(row["accuracy"]),
            "accuracy of auto": _share(row["auto_accuracy"]),
        }
        for row in guideline.get("teaching") or []
    ]


TEACHING_NOTE = (
    "What reviews bought: each run of `label --examples N` shows up to N trusted labels (human "
    "reviews and imports) in the prompt. Coverage is the share auto-accepted by the rule the run "
    "used; accuracy is against the reference, on the items that have one."
)


def human_agreement_rows(guideline: Result) -> list[tuple[str, str]]:
    """The human annotators among themselves, and the spread of their own figures against the
    reference (the range a model has to land in to be as good as a person)."""
    agreement = guideline.get("human_agreement")
    if not agreement:
        return []
    rows = [
        ("items labeled by more than one person", str(agreement.get("n_items", NO_VALUE))),
        ("human annotators", str(agreement.get("n_annotators", NO_VALUE))),
        ("Krippendorff's alpha among them", format_estimate(agreement.get("krippendorff_alpha"))),
    ]
    for name, (low, high) in (agreement.get("range") or {}).items():
        rows.append(
            (f"their {metric_title(name)} against the reference", f"{low:.3f} to {high:.3f}")
        )
    return rows


def _usd(value: float | None, digits: int = 2) -> str:
    return "not given" if value is None else f"${value:,.{digits}f}"


def cost_rows(guideline: Result) -> list[tuple[str, str]]:
    cost = guideline.get("cost")
    if not cost:
        return []
    seconds = cost.get("review_seconds")
    per_label = cost.get("review_seconds_per_final_label")
    return [
        ("final labels", str(cost.get("final_labels", NO_VALUE))),
        ("LLM cost", _usd(cost.get("llm_cost_usd"), 4)),
        ("LLM cost per final label", _usd(cost.get("cost_usd_per_final_label"), 5)),
        (
            "review time",
            NO_VALUE if seconds is None else f"{seconds:,.0f} s ({seconds / 60:.1f} min)",
        ),
        ("review seconds per final label", NO_VALUE if per_label is None else f"{per_label:.1f} s"),
        ("review cost", _usd(cost.get("review_cost_usd"))),
    ]


def trusted_cost_rows(guideline: Result) -> list[tuple[str, str]]:
    """Cost per trusted label (agent/costs.py): what labels cost with reviewer time priced."""
    cost = guideline.get("trusted_cost")
    if not cost:
        return []
    rate = cost.get("reviewer_cost_per_hour")
    median = cost.get("median_seconds_per_review")
    human, llm = cost["by_source"]
    return [
        (
            "reviewer cost per hour",
            "not set (labelagent settings set reviewer_cost_per_hour N)"
            if rate is None
            else _usd(rate),
        ),
        ("model spend", _usd(cost.get("model_cost_usd"), 4)),
        (
            "reviewer time",
            f"{cost['timed_reviews']} reviews, {cost['review_seconds']:,.0f} s"
            + ("" if median is None else f" (median {median:.1f} s per review)"),
        ),
        ("reviewer cost", _usd(cost.get("reviewer_cost_usd"))),
        (f"per final label ({cost['final_labels']})", _usd(cost.get("per_final_label_usd"), 4)),
        (f"per human label ({human['labels']})", _usd(human["per_label_usd"], 4)),
        (f"per LLM label ({llm['labels']})", _usd(llm["per_label_usd"], 4)),
        (f"people alone ({cost['items']} items)", _usd(cost.get("people_alone_usd"))),
    ]


def spend_rows(guideline: Result) -> list[dict[str, Any]]:
    """Model spend per model (and per stage, once the log records stages)."""
    cost = guideline.get("trusted_cost") or {}
    return [
        {
            "model": s["model"],
            "stage": s["stage"] or NO_VALUE,
            "drafts": s["drafts"],
            "prompt tokens": f"{s['prompt_tokens']:,}",
            "cached": f"{s['cached_prompt_tokens']:,}",
            "completion tokens": f"{s['completion_tokens']:,}",
            "USD": _usd(s["cost_usd"], 4),
        }
        for s in cost.get("spend") or []
    ]


def trusted_cost_figure(guideline: Result) -> Figure | None:
    cost = guideline.get("trusted_cost") or {}
    return plots.coverage_cost(cost.get("curve"), cost.get("people_alone_usd"))


def rule_rows(rule: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not rule:
        return []

    def share(key: str) -> str:
        value = rule.get(key)
        return NO_VALUE if value is None else f"{value:.0%}"

    threshold = rule.get("threshold")
    return [
        ("auto-accept at or above", NO_VALUE if threshold is None else f"{threshold:g}"),
        ("items automated (coverage)", share("coverage")),
        ("target error", share("target_error")),
        ("error bound", f"{share('error_bound')} with {share('confidence')} confidence"),
        ("calibration", str(rule.get("calibration_id", NO_VALUE))),
        ("created", str(rule.get("created_at", NO_VALUE))),
    ]


def figures(guideline: Result) -> dict[str, Figure]:
    """The guideline's figures by name, those without data left out: `confusion:<annotator>`
    for each model, `agreement_by_label`, `reliability`, `risk_coverage`, `prevalence`, `cost`,
    `teaching`. The HTML report and the review app's Report page both draw these."""
    reference = guideline.get("reference", "reference")
    calibration = guideline.get("calibration") or {}
    drawn: dict[str, Figure | None] = {
        f"confusion:{c['annotator']}": plots.confusion_matrix(
            c.get("confusion"), f"{c['annotator']} against {reference}"
        )
        for c in guideline.get("comparisons") or []
        if c.get("kind") == "model"
    }
    drawn["agreement_by_label"] = plots.agreement_by_label(
        _ordered_comparisons(guideline), guideline.get("labels")
    )
    drawn["reliability"] = plots.reliability_diagram(
        calibration.get("reliability"), calibration.get("signal")
    )
    rule = calibration.get("rule")
    drawn["risk_coverage"] = plots.risk_coverage(
        calibration.get("risk_coverage"), rule.get("target_error") if rule else None, rule
    )
    drawn["prevalence"] = plots.prevalence(guideline.get("prevalence"))
    drawn["cost"] = plots.cost(guideline.get("cost"))
    drawn["teaching"] = plots.teaching_loop(guideline.get("teaching"))
    return {name: fig for name, fig in drawn.items() if fig is not None}


def notes(result: Result) -> list[str]:
    """The result's notes, with the rule about independent human labels first if no note
    already speaks of blind reviews: every human figure in the report rests on it."""
    given = [str(n) for n in result.get("notes") or []]
    if any("blind" in n.lower() for n in given):
        return given
    return [INDEPENDENCE_NOTE, *given]


def _anchor(name: str, guideline_hash: str) -> str:
    """A fragment id for the guideline's section; two versions of a guideline share the name."""
    return "g-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name) + "-" + guideline_hash[:8]


def _guideline_context(guideline: Result) -> dict[str, Any]:
    images = {name: plots.figure_to_data_uri(fig) for name, fig in figures(guideline).items()}
    calibration = guideline.get("calibration")
    name = str(guideline.get("guideline", ""))
    return {
        "name": name,
        "anchor": _anchor(name, str(guideline.get("guideline_hash", ""))),
        "task": guideline.get("task", ""),
        "hash": guideline.get("guideline_hash", ""),
        "reference": guideline.get("reference", ""),
        "n_items": guideline.get("n_items", 0),
        "n_reference_items": guideline.get("n_reference_items", 0),
        "seen_model_label": guideline.get("seen_model_label") or 0,
        "comparisons": comparison_rows(guideline),
        "human_agreement": human_agreement_rows(guideline),
        "per_label": per_label_rows(guideline),
        "confusions": [
            (key.partition(":")[2], uri)
            for key, uri in images.items()
            if key.startswith("confusion:")
        ],
        "images": images,
        "calibration": None
        if not calibration
        else {
            "annotator": calibration.get("annotator", ""),
            "signal": calibration.get("signal", ""),
            "status": calibration.get("status", ""),
            "message": calibration.get("message", ""),
            "rule": rule_rows(calibration.get("rule")),
        },
        "prevalence": prevalence_rows(guideline),
        "cost": cost_rows(guideline),
        "trusted_cost": _trusted_cost_context(guideline),
        "teaching": teaching_rows(guideline),
        "teaching_note": TEACHING_NOTE,
    }


def _trusted_cost_context(guideline: Result) -> dict[str, Any] | None:
    rows = trusted_cost_rows(guideline)
    if not rows:
        return None
    figure = trusted_cost_figure(guideline)
    return {
        "rows": rows,
        "spend": spend_rows(guideline),
        "curve": None if figure is None else plots.figure_to_data_uri(figure),
    }


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(result: Result) -> str:
    """The whole report as one HTML document."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            db=result.get("db", ""),
            generated_at=result.get("generated_at", ""),
            notes=notes(result),
            ppi_reference=PPI_REFERENCE,
            guidelines=[_guideline_context(g) for g in result.get("guidelines") or []],
        )
    )


def write_html(result: Result, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(result), encoding="utf-8")
    return path
