"""Agreement between annotators (people and models), as pure functions with bootstrap intervals.

Every metric takes plain sequences of labels, one entry per item, where `None` means the
annotator gave no label; pairwise metrics use only the items both annotators labeled. A metric
that is undefined on its input (no items, an annotator who used a single label for kappa, ...)
returns `None` rather than `nan`, so `bootstrap` can drop such resamples and callers can write the
result to JSON as it is. Labels are hashable values: strings for classification and preference,
a canonical JSON string for anything else (the caller converts).

The formulas come from well-kept libraries wherever one has them, so that this module is mostly
glue (dropping missing items, mapping labels to codes, `nan` to `None`):

- scikit-learn: `accuracy` (accuracy_score), `cohen_kappa` and `weighted_kappa`
  (cohen_kappa_score, quadratic weights), `per_label` (precision_recall_fscore_support with
  zero_division=0), `confusion` (confusion_matrix), `mean_abs_diff` (mean_absolute_error).
- krippendorff: `krippendorff_alpha` (nominal, ordinal and interval, with missing values).
- statsmodels: `clopper_pearson` (proportion_confint, method="beta").
- scipy: `binomial_upper` (beta.ppf, the one-sided exact bound) and the normal quantile of
  `ppi_mean`.

Written here, because none of those libraries has them: Gwet's AC1 (`gwet_ac1`,
`gwet_ac1_multi`, Gwet 2008), the span F1 (`span_f1`), the prediction-powered estimate of a mean
or a prevalence (`ppi_mean`, `ppi_prevalence`, Angelopoulos et al., Science 2023), the percentile
bootstrap over items (`bootstrap`, on numpy's default_rng) and the calibration bins and ECE
(`reliability_bins`, `expected_calibration_error`; scikit-learn's calibration_curve reports no
bin counts). tests/test_metrics.py checks them against values worked out by hand, and the
multi-rater AC1 against the figure Gwet's irrCAC package publishes for Krippendorff's (2011)
example matrix.
"""

import math
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import krippendorff
import numpy as np
from scipy.stats import beta, hypergeom, norm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    mean_absolute_error,
    precision_recall_fscore_support,
)
from statsmodels.stats.proportion import proportion_confint

Labels = Sequence[Hashable | None]
Reliability = Sequence[Sequence[Hashable | None]]  # rows = annotators, columns = items
Span = Sequence[Any]  # (start, end, label), character offsets, end exclusive


@dataclass(frozen=True)
class Estimate:
    """A figure with its interval; `None` where the figure or the interval is undefined."""

    value: float | None
    low: float | None
    high: float | None
    n: int  # items the figure is computed on

    def as_dict(self) -> dict[str, float | int | None]:
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "value": rounded(self.value),
            "low": rounded(self.low),
            "high": rounded(self.high),
            "n": self.n,
        }


def _defined(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _paired(a: Sequence[Any], b: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """The items both annotators labeled, as two aligned lists."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _categories(observed: Iterable[Hashable], labels: Sequence[Hashable] | None) -> list[Hashable]:
    seen = set(observed)
    if labels is None:
        return list(seen)
    if unknown := seen - set(labels):
        raise ValueError(f"labels missing from `labels`: {sorted(map(repr, unknown))}")
    return list(labels)


def accuracy(a: Labels, b: Labels) -> float | None:
    """Share of the items both labeled on which a and b agree."""
    x, y = _paired(a, b)
    return float(accuracy_score(x, y)) if x else None


def cohen_kappa(
    a: Labels, b: Labels, labels: Sequence[Hashable] | None = None, weights: str | None = None
) -> float | None:
    """Cohen's kappa; weights None, "linear" or "quadratic" by position in `labels` (by default
    the labels seen, sorted)."""
    x, y = _paired(a, b)
    if not x:
        return None
    with warnings.catch_warnings():  # both warn of a 0/0 kappa, which is returned as None
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        kappa = cohen_kappa_score(x, y, labels=labels, weights=weights)
    return _defined(kappa)


def weighted_kappa(a: Labels, b: Labels, labels: Sequence[int]) -> float | None:
    """Quadratic-weighted kappa; the weight of a pair is its squared distance in rank among
    `labels` (sorted), which is the difference of values for consecutive integers."""
    return cohen_kappa(a, b, labels=sorted(labels), weights="quadratic")


def gwet_ac1(a: Labels, b: Labels, labels: Sequence[Hashable] | None = None) -> float | None:
    """Gwet's AC1 for two annotators: (pa - pe) / (1 - pe), pe = sum_k pi_k (1 - pi_k) / (q - 1),
    pi_k = share of all labels given that are k, q = len(labels) or the number of labels seen.
    The same figure as `gwet_ac1_multi` on two rows, counted directly: the bootstrap calls it
    hundreds of times."""
    x, y = _paired(a, b)
    categories = _categories([*x, *y], labels)
    if not x or len(categories) < 2:
        return None
    pa = sum(u == v for u, v in zip(x, y, strict=True)) / len(x)
    counts = Counter(x) + Counter(y)
    pi = [counts[k] / (2 * len(x)) for k in categories]
    pe = sum(p * (1 - p) for p in pi) / (len(categories) - 1)
    return (pa - pe) / (1 - pe)


def gwet_ac1_multi(
    reliability: Reliability, labels: Sequence[Hashable] | None = None
) -> float | None:
    """Gwet's AC1 for any number of annotators with missing labels (Gwet 2008; Handbook of
    Inter-Rater Reliability, 4th ed., ch. 4). Agreement pa is averaged over items with two or
    more labels; pi_k over items with at least one."""
    units = [
        Counter(v for v in column if v is not None) for column in zip(*reliability, strict=True)
    ]
    rated = [(unit, unit.total()) for unit in units if unit.total() >= 1]
    pairable = [(unit, r) for unit, r in rated if r >= 2]
    categories = _categories((k for unit, _ in rated for k in unit), labels)
    if not pairable or len(categories) < 2:
        return None
    pa = sum(sum(c * (c - 1) for c in u.values()) / (r * (r - 1)) for u, r in pairable)
    pa /= len(pairable)
    pi = [sum(unit[k] / r for unit, r in rated) / len(rated) for k in categories]
    pe = sum(p * (1 - p) for p in pi) / (len(categories) - 1)
    return (pa - pe) / (1 - pe)


def krippendorff_alpha(
    reliability: Reliability, level: Literal["nominal", "ordinal", "interval"] = "nominal"
) -> float | None:
    """Krippendorff's alpha over an annotators x items matrix (None = missing). Nominal labels
    are coded by their index in the sorted label set; ordinal and interval labels are numbers."""
    values = {v for row in reliability for v in row if v is not None}
    if level == "nominal":
        code = {v: float(i) for i, v in enumerate(sorted(values, key=repr))}
    else:
        code = {v: float(v) for v in values}
    data = np.array([[np.nan if v is None else code[v] for v in row] for row in reliability])
    if len(code) < 2 or not ((~np.isnan(data)).sum(axis=0) >= 2).any():
        return None  # one value only, or fewer than 2 pairable values: alpha is 0/0
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    return _defined(alpha)


def per_label(
    a_true: Labels, b_pred: Labels, labels: Sequence[Hashable]
) -> dict[Hashable, dict[str, float | int]]:
    """Precision, recall, F1 (0 where undefined) and support of b against a, per label."""
    x, y = _paired(a_true, b_pred)
    if x:
        p, r, f, s = precision_recall_fscore_support(x, y, labels=list(labels), zero_division=0)
    else:
        p = r = f = s = [0] * len(labels)
    return {
        label: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, label in enumerate(labels)
    }


def confusion(a_true: Labels, b_pred: Labels, labels: Sequence[Hashable]) -> list[list[int]]:
    """Counts with rows = a's (reference) label and columns = b's (predicted) label."""
    x, y = _paired(a_true, b_pred)
    if not x:
        return [[0] * len(labels) for _ in labels]
    return confusion_matrix(x, y, labels=list(labels)).tolist()


def mean_abs_diff(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Mean absolute difference between two annotators' numeric ratings."""
    x, y = _paired(a, b)
    return float(mean_absolute_error(x, y)) if x else None


def _spans_matched(truth: Sequence[Span], pred: Sequence[Span], mode: str) -> int:
    if mode == "exact":
        return (Counter(map(tuple, truth)) & Counter(map(tuple, pred))).total()
    unmatched = [tuple(span) for span in truth]
    matched = 0
    for start, end, label in pred:
        for i, (t_start, t_end, t_label) in enumerate(unmatched):
            if t_label == label and max(start, t_start) < min(end, t_end):
                del unmatched[i]
                matched += 1
                break
    return matched


def span_f1(
    true_spans: Sequence[Sequence[Span] | None],
    pred_spans: Sequence[Sequence[Span] | None],
    mode: Literal["exact", "overlap"] = "exact",
) -> dict[str, float | int]:
    """Micro-averaged span precision, recall and F1 (0 where undefined) over items.
    exact: same start, end and label; overlap: same label and intersecting [start, end) ranges,
    each true span matched at most once, greedily in the order of the predicted spans."""
    if mode not in ("exact", "overlap"):
        raise ValueError(f"mode must be 'exact' or 'overlap', not {mode!r}")
    matched = n_true = n_pred = 0
    for truth, pred in zip(*_paired(true_spans, pred_spans), strict=True):
        n_true, n_pred = n_true + len(truth), n_pred + len(pred)
        matched += _spans_matched(truth, pred, mode)
    precision = matched / n_pred if n_pred else 0.0
    recall = matched / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_true": n_true, "n_pred": n_pred}


def bootstrap(
    stat: Callable[..., float | None],
    *columns: Sequence[Any],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """`stat(*columns)` with a percentile bootstrap interval over items (see `bootstrap_many`)."""
    return bootstrap_many(
        lambda *cols: {"value": stat(*cols)},
        *columns,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )["value"]


def bootstrap_many(
    stats: Callable[..., dict[str, float | None]],
    *columns: Sequence[Any],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Several figures computed together by `stats(*columns) -> {name: value}`, each with a
    percentile bootstrap interval over items: every resample draws item indices with replacement
    and applies them to all columns; resamples on which a figure is undefined (None or nan) are
    dropped for it; no interval when the figure itself is undefined. The same seed gives the same
    intervals. One call per resample for all figures keeps per-label tables affordable."""
    n = len(columns[0]) if columns else 0
    if any(len(column) != n for column in columns):
        raise ValueError("columns must have one entry per item each")
    values = {k: _defined(v) for k, v in stats(*columns).items()}
    draws: dict[str, list[float]] = {k: [] for k in values}
    if n:
        rng = np.random.default_rng(seed)
        for _ in range(n_resamples):
            index = rng.integers(0, n, size=n).tolist()
            for key, draw in stats(*([column[i] for i in index] for column in columns)).items():
                if _defined(draw) is not None and key in draws:
                    draws[key].append(float(draw))
    tail = 50 * (1 - confidence)
    out = {}
    for key, value in values.items():
        if value is None or not draws[key]:
            out[key] = Estimate(value, None, None, n)
            continue
        low, high = np.percentile(draws[key], [tail, 100 - tail])
        out[key] = Estimate(value, float(low), float(high), n)
    return out


def bootstrap_reliability(
    stat: Callable[[Reliability], float | None],
    reliability: Reliability,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """`bootstrap` for an annotators x items matrix: resamples its item columns (whole items,
    not Krippendorff's own bootstrap of pairable values)."""

    def on_rows(*rows: Sequence[Hashable | None]) -> float | None:
        return stat(rows)

    return bootstrap(
        on_rows, *reliability, n_resamples=n_resamples, confidence=confidence, seed=seed
    )


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval of a rate k / n; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    low, high = proportion_confint(k, n, alpha=1 - confidence, method="beta")
    return float(low), float(high)


def binomial_upper(k: int, n: int, confidence: float) -> float:
    """One-sided exact upper bound on a rate: the p with P(Bin(n, p) <= k) = 1 - confidence."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if k == n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


def hypergeometric_upper(k: int, n: int, m: int, confidence: float) -> float:
    """Exact upper bound on the error rate among `m` unreviewed items when `k` of `n` reviewed
    items drawn at random from the same `n + m` are wrong: (K - k) / m for the largest total K
    of errors under which seeing `k` or fewer still has probability above 1 - confidence.
    This bounds the error of those very items, not of a population they came from; with
    m == 0 there is nothing to bound (0.0)."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if m == 0:
        return 0.0
    totals = np.arange(k, k + m + 1)
    plausible = totals[hypergeom.cdf(k, n + m, totals, n) > 1 - confidence]
    return float((plausible[-1] - k) / m)


def reliability_bins(
    probs: Sequence[float | None], correct: Sequence[bool | None], n_bins: int = 10
) -> list[dict[str, float | int]]:
    """Equal-width bins of stated probability on [0, 1] (1.0 falls in the last), with the mean
    probability and the share correct in each; empty bins are left out."""
    p, c = (np.asarray(v, dtype=float) for v in _paired(probs, correct))
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    index = np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)
    return [
        {
            "low": i / n_bins,
            "high": (i + 1) / n_bins,
            "mean_prob": float(p[index == i].mean()),
            "accuracy": float(c[index == i].mean()),
            "count": int((index == i).sum()),
        }
        for i in np.unique(index).tolist()
    ]


def expected_calibration_error(
    probs: Sequence[float | None], correct: Sequence[bool | None], n_bins: int = 10
) -> float | None:
    """Sum over bins of count / N * |accuracy - mean probability|."""
    bins = reliability_bins(probs, correct, n_bins)
    total = sum(b["count"] for b in bins)
    if not total:
        return None
    return sum(b["count"] / total * abs(b["accuracy"] - b["mean_prob"]) for b in bins)


def ppi_mean(
    pred_unlabeled: Sequence[float | None],
    pred_labeled: Sequence[float | None],
    true_labeled: Sequence[float | None],
    confidence: float = 0.95,
) -> Estimate:
    """Prediction-powered estimate of a mean (Angelopoulos et al., Science 2023): the mean of the
    predictions on unlabeled items plus the mean error (truth - prediction) on labeled ones, with
    a normal interval. Unbiased however biased the predictions; they only change its width."""
    f_unlabeled = np.asarray([v for v in pred_unlabeled if v is not None], dtype=float)
    f_labeled, y_labeled = (np.asarray(v, dtype=float) for v in _paired(pred_labeled, true_labeled))
    n_unlabeled, n_labeled = len(f_unlabeled), len(y_labeled)
    n = n_unlabeled + n_labeled
    if not n_unlabeled or not n_labeled:
        return Estimate(None, None, None, n)
    rectifier = y_labeled - f_labeled
    theta = float(f_unlabeled.mean() + rectifier.mean())
    if n_unlabeled < 2 or n_labeled < 2:
        return Estimate(theta, None, None, n)
    variance = f_unlabeled.var(ddof=1) / n_unlabeled + rectifier.var(ddof=1) / n_labeled
    half = float(norm.ppf(0.5 + confidence / 2) * math.sqrt(variance))
    return Estimate(theta, theta - half, theta + half, n)


def ppi_prevalence(
    llm_unlabeled: Labels,
    llm_labeled: Labels,
    human_labeled: Labels,
    labels: Sequence[Hashable],
    confidence: float = 0.95,
) -> dict[Hashable, Estimate]:
    """Prediction-powered share of each label (single-label tasks): `ppi_mean` of the indicators
    `label == L`. A missing model label counts as "not L"; items without a human label are
    dropped from the labeled set. A share lies in [0, 1], so the interval is clipped to it."""
    out = {}
    for label in labels:
        e = ppi_mean(
            [float(v == label) for v in llm_unlabeled],
            [float(v == label) for v in llm_labeled],
            [None if h is None else float(h == label) for h in human_labeled],
            confidence,
        )
        out[label] = Estimate(e.value, _clip(e.low), _clip(e.high), e.n)
    return out


def _clip(x: float | None) -> float | None:
    return None if x is None else min(max(x, 0.0), 1.0)
