"""`labelagent eval`: LLM-vs-human and human-vs-human agreement for every guideline in the log,
with bootstrap intervals, calibration curves, prevalence by prediction-powered inference and the
cost per final label. The result is an `EvalResult`: `--json` prints its `as_dict()`, the HTML
report and the review app's Report page draw that mapping."""

import json
from collections.abc import Set
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labelagent.calibration.learn import examples, levels
from labelagent.calibration.rule import latest_rule
from labelagent.costs import costs
from labelagent.errors import ConfigError
from labelagent.evals import metrics
from labelagent.store.annotations import HUMANS, GuidelineData, guideline_hashes, load
from labelagent.store.db import read_only
from labelagent.store.teaching import decisions_by_setting, example_item_ids
from labelagent.tasks import task_for

NOTES = [
    "Only blind reviews and imported labels count as independent human labels: a reviewer who "
    "saw the model's label is left out of every agreement figure.",
    "Reference 'humans' is each item's strict majority of the independent human labels (ties "
    "left out); a human annotator is compared with the majority of the others.",
    "Intervals: 95% percentile bootstrap over items. Libraries: scikit-learn (accuracy, Cohen's "
    "kappa, precision/recall/F1, confusion), krippendorff (alpha), statsmodels (Clopper-Pearson); "
    "Gwet's AC1, span F1 and prediction-powered inference are written in evals/metrics.py.",
    "'Inside human range' is true when the model agrees with the reference at least as well as "
    "the least-agreeing human annotator (accuracy and Cohen's kappa).",
]


@dataclass(frozen=True)
class Comparison:
    """One annotator against the reference on the `n` items both labeled; `metrics` by name."""

    annotator: str
    kind: str  # model | human
    n: int
    metrics: dict[str, metrics.Estimate]
    per_label: dict[str, Any]
    confusion: dict[str, Any] | None


@dataclass(frozen=True)
class HumanAgreement:
    """The independent humans among themselves; `range`: the least and most any of them agrees
    with the reference, per figure."""

    n_items: int
    n_annotators: int
    krippendorff_alpha: metrics.Estimate
    range: dict[str, list[float]]


@dataclass(frozen=True)
class CalibrationView:
    """How often a model is right at each level of its score, and its stored rule, if any."""

    annotator: str
    signal: str | None
    reliability: dict[str, Any]
    risk_coverage: list[dict[str, Any]]
    rule: dict[str, Any] | None
    status: str  # rule | no_rule
    message: str


@dataclass(frozen=True)
class GuidelineEval:
    """One guideline's evaluation; the parts that are tables of figures stay mappings."""

    guideline: str
    guideline_hash: str
    task: str
    labels: list[str]
    reference: str
    n_items: int
    n_reference_items: int
    seen_model_label: int  # reviews left out: the reviewer saw the model's label
    left_out_as_examples: int  # items whose model labels were left out (eval's option)
    comparisons: list[Comparison]
    human_agreement: HumanAgreement | None
    inside_human_range: dict[str, bool]
    calibration: CalibrationView | None
    prevalence: list[dict[str, Any]]
    cost: dict[str, Any]
    trusted_cost: dict[str, Any] | None
    teaching: list[dict[str, Any]]


@dataclass(frozen=True)
class EvalResult:
    """`labelagent eval`: every guideline in the log against the reference."""

    generated_at: str
    db: str
    notes: list[str]
    guidelines: list[GuidelineEval]

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape, which the HTML report and the Report page also read."""
        return asdict(self)


def rounded(estimate: metrics.Estimate) -> metrics.Estimate:
    """The estimate as shown: to four places."""
    return metrics.Estimate(**estimate.as_dict())


def evaluate(
    db: str | Path,
    reference: str = HUMANS,
    n_resamples: int = 500,
    seed: int = 0,
    exclude_example_neighbours: bool = False,
) -> EvalResult:
    """`exclude_example_neighbours`: leave out the model labels of every item whose trusted
    label a prompt of the guideline showed as an example (drafts.example_ids, any run, any
    model). Every model figure is then on items whose reference label never entered a prompt, as
    on a held-out set: near-duplicates that were each other's examples cannot vouch for each
    other. Human labels are kept, so human-vs-human agreement is unchanged."""
    with read_only(db):
        found = [load(db, ghash) for ghash, _ in guideline_hashes(db)]
        known = sorted({name for data in found for name in data.annotators()})
        if reference != HUMANS and reference not in known:
            raise ConfigError(
                f"no annotator {reference!r} in {db}; known: {', '.join(known) or 'none'}",
                hint="Use --reference humans, or the exact --annotator name of an import.",
            )
        return EvalResult(
            generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            db=str(db),
            notes=NOTES,
            guidelines=[
                evaluate_guideline(
                    data,
                    db,
                    reference,
                    n_resamples,
                    seed,
                    example_item_ids(db, data.guideline.content_hash)
                    if exclude_example_neighbours
                    else set(),
                )
                for data in found
            ],
        )


def evaluate_guideline(
    data: GuidelineData,
    db: str | Path,
    reference: str,
    n_resamples: int,
    seed: int,
    left_out: Set[str] = frozenset(),
) -> GuidelineEval:
    """`left_out`: items whose model labels are left out of every figure (see `evaluate`)."""
    data = replace(
        data,
        annotations=[a for a in data.annotations if a.kind != "model" or a.item_id not in left_out],
    )
    g = data.guideline
    ref_all = data.reference(reference)
    opts = {"n_resamples": n_resamples, "seed": seed}
    comparisons = [
        compare(data, name, reference, **opts)
        for name in data.annotators()
        if name != reference and _is_compared(data, name)
    ]
    comparisons = [c for c in comparisons if c.n]
    humans = [c for c in comparisons if c.kind == "human"]
    agreement = human_agreement(data, reference, humans, **opts)
    priced = trusted_cost(db, g.content_hash)
    rate = priced["reviewer_cost_per_hour"] if priced else None
    return GuidelineEval(
        guideline=g.name,
        guideline_hash=g.content_hash,
        task=g.task,
        labels=list(g.labels) if task_for(g).kind == "choice" else [],
        reference=reference,
        n_items=len({a.item_id for a in data.annotations}),
        n_reference_items=len(ref_all),
        seen_model_label=data.seen_model_label,
        left_out_as_examples=len(left_out),
        comparisons=comparisons,
        human_agreement=agreement,
        inside_human_range=_inside(comparisons, agreement),
        calibration=calibration_view(data, db, reference),
        prevalence=prevalence(data, ref_all),
        cost=cost(data, rate),
        trusted_cost=priced,
        teaching=teaching(data, db, ref_all, left_out),
    )


def trusted_cost(db: str | Path, guideline_hash: str) -> dict[str, Any] | None:
    """agent/costs.py's figures for the guideline, with the reviewer rate they used."""
    found = costs(db, guideline_hash)
    if not found.guidelines:
        return None
    return {
        "reviewer_cost_per_hour": found.reviewer_cost_per_hour,
        **asdict(found.guidelines[0]),
    }


def _is_compared(data: GuidelineData, name: str) -> bool:
    return any(
        a.annotator == name and (a.kind == "model" or a.independent) for a in data.annotations
    )


def compare(
    data: GuidelineData, name: str, reference: str, n_resamples: int, seed: int
) -> Comparison:
    kind = next(a.kind for a in data.annotations if a.annotator == name)
    ref = data.reference(reference, leave_out=name if kind == "human" else None)
    own = {
        a.item_id: a.label
        for a in data.annotations
        if a.annotator == name and (kind == "model" or a.independent)
    }
    items = sorted(set(own) & set(ref))
    truth = [json.loads(ref[i]) for i in items]
    given = [json.loads(own[i]) for i in items]
    found = task_metrics(data.guideline, truth, given, n_resamples, seed)
    return Comparison(name, kind, len(items), **found)


def task_metrics(g, truth: list, given: list, n_resamples: int, seed: int) -> dict[str, Any]:
    def boot(stats, *cols) -> dict[str, metrics.Estimate]:
        found = metrics.bootstrap_many(stats, *cols, n_resamples=n_resamples, seed=seed)
        return {k: rounded(e) for k, e in found.items()}

    if not truth:
        return {"metrics": {}, "per_label": {}, "confusion": None}
    kind = task_for(g).kind
    if kind == "choice":
        labels = list(g.labels)
        return {
            "metrics": boot(lambda a, b: categorical(a, b, labels), truth, given),
            "per_label": per_label(boot(lambda a, b: label_figures(a, b, labels), truth, given)),
            "confusion": {"labels": labels, "matrix": metrics.confusion(truth, given, labels)},
        }
    if kind == "choices":
        labels = list(g.labels)
        as_sets = [json.dumps(sorted(x)) for x in truth], [json.dumps(sorted(x)) for x in given]
        return {
            "metrics": boot(lambda a, b: {"exact_match": metrics.accuracy(a, b)}, *as_sets),
            "per_label": per_label(
                boot(lambda a, b: multilabel_figures(a, b, labels), truth, given)
            ),
            "confusion": None,
        }
    if kind == "scores":
        scale = list(range(g.scale.min, g.scale.max + 1))
        return {
            "metrics": boot(
                lambda a, b: rating_figures(a, b, list(g.dimensions), scale), truth, given
            ),
            "per_label": {},
            "confusion": None,
        }
    spans_t = [[(s["start"], s["end"], s["label"]) for s in x] for x in truth]
    spans_p = [[(s["start"], s["end"], s["label"]) for s in x] for x in given]

    def span_figures(a: list, b: list) -> dict[str, float]:
        return {f"{m}_f1": metrics.span_f1(a, b, m)["f1"] for m in ("exact", "overlap")}

    return {"metrics": boot(span_figures, spans_t, spans_p), "per_label": {}, "confusion": None}


def categorical(a: list, b: list, labels: list) -> dict[str, float | None]:
    return {
        "accuracy": metrics.accuracy(a, b),
        "cohen_kappa": metrics.cohen_kappa(a, b, labels),
        "krippendorff_alpha": metrics.krippendorff_alpha([a, b]),
        "gwet_ac1": metrics.gwet_ac1(a, b, labels),
    }


def label_figures(a: list, b: list, labels: list) -> dict[str, float]:
    table = metrics.per_label(a, b, labels)
    return {
        f"{label}\t{part}": table[label][part]
        for label in labels
        for part in ("precision", "recall", "f1", "support")
    }


def multilabel_figures(a: list, b: list, labels: list) -> dict[str, float]:
    out = {}
    for label in labels:
        table = metrics.per_label([label in x for x in a], [label in x for x in b], [True])
        out |= {f"{label}\t{part}": table[True][part] for part in ("precision", "recall", "f1")}
        out[f"{label}\tsupport"] = sum(label in x for x in a)
    return out


def rating_figures(a: list, b: list, dimensions: list, scale: list) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for dim in dimensions:
        pairs = [(x.get(dim), y.get(dim)) for x, y in zip(a, b, strict=True)]
        t = [x for x, y in pairs if x is not None and y is not None]
        p = [y for x, y in pairs if x is not None and y is not None]
        out[f"weighted_kappa:{dim}"] = metrics.weighted_kappa(t, p, scale)
        out[f"mean_abs_diff:{dim}"] = metrics.mean_abs_diff(t, p)
        out[f"accuracy:{dim}"] = metrics.accuracy(t, p)
    return out


def per_label(figures: dict[str, metrics.Estimate]) -> dict[str, Any]:
    """{"label\tpart": estimate} -> {label: {part: estimate, "support": count}}."""
    out: dict[str, Any] = {}
    for key, estimate in figures.items():
        label, part = key.split("\t")
        out.setdefault(label, {})[part] = estimate.value if part == "support" else estimate
    return {label: {**row, "support": int(row["support"])} for label, row in out.items()}


def human_agreement(
    data: GuidelineData, reference: str, humans: list[Comparison], n_resamples: int, seed: int
) -> HumanAgreement | None:
    by_item = {
        item: {k: v for k, v in labels.items() if k != reference}
        for item, labels in data.human_labels().items()
    }
    shared = {item: labels for item, labels in by_item.items() if len(labels) >= 2}
    if not shared and len(humans) < 2:
        return None
    names = sorted({name for labels in shared.values() for name in labels})
    items = sorted(shared)
    matrix = [[shared[i].get(name) for i in items] for name in names]
    alpha = metrics.bootstrap_reliability(
        metrics.krippendorff_alpha, matrix, n_resamples=n_resamples, seed=seed
    )
    spread = {}
    for key in ("accuracy", "cohen_kappa"):
        values = [
            c.metrics[key].value
            for c in humans
            if key in c.metrics and c.metrics[key].value is not None
        ]
        if values:
            spread[key] = [min(values), max(values)]
    return HumanAgreement(len(items), len(names), rounded(alpha), spread)


def _inside(comparisons: list[Comparison], agreement: HumanAgreement | None) -> dict[str, bool]:
    if not agreement or not agreement.range:
        return {}
    out = {}
    for c in comparisons:
        if c.kind != "model":
            continue
        checks = [
            c.metrics[key].value >= low
            for key, (low, _) in agreement.range.items()
            if key in c.metrics and c.metrics[key].value is not None
        ]
        if checks:
            out[c.annotator] = all(checks)
    return out


def calibration_view(data: GuidelineData, db: str | Path, reference: str) -> CalibrationView | None:
    models = [name for name in data.annotators("model") if name != reference]
    for name in models:
        signal, found = examples(data, name, reference)
        if len(found) < 2:
            continue
        probs = [min(max(e.score, 0.0), 1.0) for e in found]  # the signal read as P(right)
        correct = [e.correct for e in found]
        curve = []
        for t in levels([e.score for e in found]):
            accepted = [e for e in found if e.score >= t]
            wrong = sum(not e.correct for e in accepted)
            curve.append(
                {
                    "threshold": t,
                    "coverage": round(len(accepted) / len(found), 4),
                    "error": round(wrong / len(accepted), 4),
                    "n": len(accepted),
                }
            )
        rule = latest_rule(db, data.guideline.content_hash, name)
        return CalibrationView(
            annotator=name,
            signal=signal,
            reliability={
                "bins": metrics.reliability_bins(probs, correct),
                "ece": round(metrics.expected_calibration_error(probs, correct), 4),
            },
            risk_coverage=curve,
            rule=rule,
            status="rule" if rule else "no_rule",
            message=(
                f"stored rule {rule['calibration_id']}: accept when {signal} >= {rule['threshold']}"
                if rule
                else "no calibrated rule stored yet: run `labelagent calibrate`"
            ),
        )
    return None


def prevalence(data: GuidelineData, ref: dict[str, str]) -> list[dict[str, Any]]:
    g = data.guideline
    if task_for(g).kind != "choice":
        return []
    decided = [a for a in data.annotations if a.kind == "model" and "agreement" in a.signals]
    if not decided:
        return []
    llm = {a.item_id: json.loads(a.label) for a in decided}
    labeled = sorted(set(llm) & set(ref))
    unlabeled = [llm[i] for i in llm if i not in ref]
    truth = [json.loads(ref[i]) for i in labeled]
    ppi = metrics.ppi_prevalence(unlabeled, [llm[i] for i in labeled], truth, list(g.labels))
    rows = []
    for label in g.labels:
        share = sum(v == label for v in llm.values()) / len(llm)
        hits = sum(t == label for t in truth)
        low, high = metrics.clopper_pearson(hits, len(truth), 0.95)
        human = metrics.Estimate(hits / len(truth) if truth else None, low, high, len(truth))
        rows.append(
            {
                "label": label,
                "llm_share": round(share, 4),
                "human_share": human.as_dict(),
                "ppi": ppi[label].as_dict(),
            }
        )
    return rows


def cost(data: GuidelineData, rate: float | None = None) -> dict[str, Any]:
    """With a reviewer rate (dollars an hour, the log's reviewer_cost_per_hour), review time is
    priced too."""
    n = data.final_labels
    return {
        "llm_cost_usd": round(data.llm_cost_usd, 6),
        "review_seconds": round(data.review_seconds, 1),
        "final_labels": n,
        "cost_usd_per_final_label": round(data.llm_cost_usd / n, 6) if n else None,
        "review_seconds_per_final_label": round(data.review_seconds / n, 2) if n else None,
        "review_cost_usd": None if rate is None else round(data.review_seconds / 3600 * rate, 6),
    }


def teaching(
    data: GuidelineData, db: str | Path, ref: dict[str, str], left_out: Set[str] = frozenset()
) -> list[dict[str, Any]]:
    """Per model and example setting (`label --examples`, with the trusted labels its examples
    were drawn from): the share of items auto-accepted (coverage, at the rule the run used) and
    the accuracy of its labels, all and auto-accepted, against the reference. An item is never
    an example for itself, so its own reference label is independent of its prompt."""
    task = task_for(data.guideline)
    groups: dict[tuple, list] = {}
    for row in decisions_by_setting(db, data.guideline.content_hash):
        if row.item_id in left_out:
            continue
        shown = row.examples or {}
        selector = shown.get("selector", "none")
        if shown.get("embedding_model"):
            selector = f"{selector} by {shown['embedding_model']}"
        key = (row.model, shown.get("pool", 0), selector, shown.get("n", 0))
        groups.setdefault(key, []).append(row)

    def accuracy(rows: list) -> float | None:
        judged = [r for r in rows if r.item_id in ref]
        hits = sum(
            r.label is not None
            and task.labels_equal(json.loads(r.label), json.loads(ref[r.item_id]))
            for r in judged
        )
        return round(hits / len(judged), 4) if judged else None

    out = []
    for (model, pool, selector, n), rows in sorted(groups.items()):
        auto = [r for r in rows if r.route == "auto"]
        out.append(
            {
                "model": model,
                "trusted_labels": pool,
                "selector": selector,
                "examples": n,
                "decided": len(rows),
                "with_reference": sum(r.item_id in ref for r in rows),
                "coverage": round(len(auto) / len(rows), 4),
                "accuracy": accuracy(rows),
                "auto_accuracy": accuracy(auto),
            }
        )
    return out
