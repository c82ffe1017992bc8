"""Acceptance rules with a finite-sample guarantee, chosen from reviewed items.

The rule accepts an item when its score (the verdict's agreement across every sample of every
model, or an imported model's stated confidence) reaches a threshold. The threshold is chosen
by fixed-sequence testing (Learn-then-Test, Angelopoulos et al. 2021; "Trust or Escalate", Jung
et al. 2025): thresholds are tested from the strictest to the loosest, each with the one-sided
Clopper-Pearson upper bound at level C on the error of the items it accepts, and the loosest one
reached before the first failure is kept. With probability at least C the error rate of the
accepted items is then at most E, provided the reviewed items are a random sample of the items
the rule will see.

Two choices keep the test from stopping early on noise: candidate thresholds are the distinct
score values (every tied item counts) or, when there are more than `MAX_LEVELS`, score quantiles;
and a threshold is only tested if it accepts enough items to pass with an observed error rate of
half the target (`SKIP_SHARE`), so that a few errors among the first few dozen items do not end
the search. When even all the reviewed items are too few for that, the threshold must be able to
pass with one error, else with none. Both depend on counts only, never on correctness.

Two guarantees. `population` (the default): the error rate of the items the rule accepts, among
items like the reviewed ones, with the Clopper-Pearson bound. `dataset`: the error rate among the
unreviewed items of this very log that the rule accepts (the labels an export will carry), with
an exact hypergeometric bound given how many unreviewed items each threshold would accept; it is
the stricter claim and needs the reviewed items to be a random sample of the decided ones.

The score order is fixed before any label is seen, so every reviewed item is spent on the
guarantee; an isotonic calibrator then maps the score to the probability that the label is
right, for the report.
"""

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from labelagent.evals.metrics import binomial_upper, clopper_pearson, hypergeometric_upper
from labelagent.store.annotations import HUMANS, GuidelineData

SIGNALS = ("support", "agreement", "confidence")  # the calibration score: the first a label has

MAX_LEVELS = 20
SKIP_SHARE = 0.5  # a tested threshold could pass with an observed error of this share of E


@dataclass(frozen=True)
class Example:
    """One reviewed item: its score and whether the model's label equals the reference."""

    item_id: str
    score: float
    correct: bool


@dataclass(frozen=True)
class Step:
    threshold: Any  # a threshold, or a cascade's thresholds (one per stage)
    accepted: int
    errors: int
    upper: float | None  # None: skipped, too few items to pass even without an error
    passed: bool


@dataclass
class Selection:
    threshold: Any
    steps: list[Step]

    @property
    def chosen(self) -> Step | None:
        return next((s for s in self.steps if s.threshold == self.threshold), None)


@dataclass(frozen=True)
class HoldoutCheck:
    """The rule on the held-out items: how many it accepts, how many wrongly, and the error's
    two-sided Clopper-Pearson interval at the confidence."""

    items: int
    accepted: int
    errors: int
    error: float | None
    low: float
    high: float


@dataclass
class Calibration:
    """What `labelagent calibrate` found; `rule` is what the pipeline stores and applies."""

    status: str  # rule | no_rule | too_few | refused_by_holdout
    message: str
    target_error: float
    confidence: float
    signal: str
    n_calibration: int
    n_holdout: int
    selection: Selection
    holdout: HoldoutCheck | None = None
    more_reviews_needed: int | None = None
    calibrator: list[tuple[float, float]] = field(default_factory=list)
    guarantee: str = "population"  # population | dataset

    @property
    def rule(self) -> dict | None:
        if self.status != "rule" or self.selection.threshold is None:
            return None
        chosen = self.selection.chosen
        return {
            "signal": self.signal,
            "threshold": self.selection.threshold,
            "target_error": self.target_error,
            "confidence": self.confidence,
            "guarantee": self.guarantee,
            "error_bound": chosen.upper if chosen else None,
            "coverage": chosen.accepted / self.n_calibration if chosen else None,
        }

    def as_dict(self) -> dict:
        out = asdict(self)
        out["rule"] = self.rule
        return out


def levels(scores: Sequence[float]) -> list[float]:
    """Candidate thresholds, strictest first: the distinct scores, or quantiles when many."""
    distinct = sorted(set(scores), reverse=True)
    if len(distinct) <= MAX_LEVELS:
        return distinct
    quantiles = np.quantile(np.asarray(scores, dtype=float), np.linspace(1, 0, MAX_LEVELS + 1))
    return sorted({float(q) for q in quantiles}, reverse=True)


def select_threshold(
    examples: Sequence[Example],
    target_error: float,
    confidence: float,
    unreviewed: Sequence[float] | None = None,
) -> Selection:
    """`unreviewed`: the scores of the decided items without a reference label, for the
    `dataset` guarantee; None for the `population` guarantee."""
    scores = np.array([e.score for e in examples], dtype=float)
    wrong = np.array([not e.correct for e in examples], dtype=bool)
    others = np.array(unreviewed if unreviewed is not None else [], dtype=float)

    def upper(k: int, n: int, t: float) -> float:
        if unreviewed is None or n == 0:
            return binomial_upper(k, n, confidence) if n else 1.0
        return hypergeometric_upper(k, n, int((others >= t).sum()), confidence)

    def counts(t: float) -> tuple[int, int]:
        accepted = scores >= t
        return int(accepted.sum()), int(wrong[accepted].sum())

    return fixed_sequence(levels(scores.tolist()), counts, upper, len(scores), target_error)


def fixed_sequence(
    candidates: Sequence[Any],
    counts: Callable[[Any], tuple[int, int]],
    upper: Callable[[int, int, Any], float],
    total: int,
    target_error: float,
) -> Selection:
    """The fixed-sequence test: `candidates` strictest first (a threshold, or a cascade's
    thresholds), `counts(c)` the items c accepts among the `total` reviewed ones and how many of
    them are wrong, `upper(k, n, c)` the bound at the confidence. The loosest candidate reached
    before the first failure is kept; candidates too small to pass (`allowed_errors`) are
    skipped, which depends on counts only."""
    steps: list[Step] = []
    chosen = None
    tolerated = allowed_errors(upper, total, candidates[-1] if candidates else 1.0, target_error)
    for t in candidates:
        n, k = counts(t)
        if upper(min(tolerated(n), n), n, t) > target_error:
            steps.append(Step(t, n, k, None, False))
            continue
        bound = upper(k, n, t)
        passed = bound <= target_error
        steps.append(Step(t, n, k, round(bound, 6), passed))
        if not passed:
            break
        chosen = t
    return Selection(chosen, steps)


def allowed_errors(
    upper: Callable[[int, int, Any], float], total: int, loosest: Any, target_error: float
) -> Callable[[int], int]:
    """How many errors a threshold accepting n items must be able to show and still pass, to be
    tested at all: n * E * SKIP_SHARE when all `total` reviewed items could pass that way, else
    one when they could pass with one, else none. `upper(k, n, threshold)` is the bound."""
    rules: list[Callable[[int], int]] = [
        lambda n: math.floor(n * target_error * SKIP_SHARE),
        lambda n: 1,
    ]
    fits = (r for r in rules if upper(min(r(total), total), total, loosest) <= target_error)
    return next(fits, lambda n: 0)


def split(examples: Sequence[Example], holdout: float, seed: int = 0) -> tuple[list, list]:
    """A fixed split by item id, so running calibrate again holds out the same items."""
    if holdout <= 0:
        return list(examples), []
    cal, held = [], []
    for e in examples:
        digest = hashlib.sha256(f"{seed}:{e.item_id}".encode()).digest()
        (held if int.from_bytes(digest[:8], "big") / 2**64 < holdout else cal).append(e)
    return cal, held


def fit_calibrator(examples: Sequence[Example]) -> IsotonicRegression | None:
    if len({e.correct for e in examples}) < 2:
        return None
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit([e.score for e in examples], [float(e.correct) for e in examples])
    return model


def probabilities(examples: Sequence[Example], fitted: Sequence[Example]) -> list[float]:
    """P(right) for each example, from an isotonic calibrator fitted on `fitted`."""
    model = fit_calibrator(fitted)
    if model is None:
        rate = sum(e.correct for e in fitted) / max(len(fitted), 1)
        return [rate] * len(examples)
    return [float(p) for p in model.predict([e.score for e in examples])]


def reviews_needed(
    examples: Sequence[Example], target_error: float, confidence: float
) -> int | None:
    """How many more reviewed items (drawn like these) the most promising threshold needs, if its
    observed error rate and share hold; None when no threshold's observed error is below E."""
    scores = [e.score for e in examples]
    counts = [
        (sum(s >= t for s in scores), sum(not e.correct for e in examples if e.score >= t))
        for t in levels(scores)
    ]
    return reviews_needed_for(counts, len(examples), target_error, confidence)


def reviews_needed_for(
    counts: Sequence[tuple[int, int]], total: int, target_error: float, confidence: float
) -> int | None:
    """`reviews_needed` from each candidate's (accepted, wrong) counts among `total` items."""
    best = None
    for accepted, wrong in counts:
        if not accepted or wrong / accepted >= target_error:
            continue
        rate, share, n = wrong / accepted, accepted / total, accepted
        while (
            n < 1_000_000
            and binomial_upper(max(math.ceil(rate * n), 1), n, confidence) > target_error
        ):
            n = max(n + 1, int(n * 1.1))
        needed = math.ceil(n / share)
        best = needed if best is None else min(best, needed)
    return None if best is None else max(best - total, 1)


def check_holdout(held: Sequence[Example], threshold: float, confidence: float) -> HoldoutCheck:
    accepted = [e for e in held if e.score >= threshold]
    errors = sum(not e.correct for e in accepted)
    low, high = clopper_pearson(errors, len(accepted), confidence)
    return HoldoutCheck(
        items=len(held),
        accepted=len(accepted),
        errors=errors,
        error=errors / len(accepted) if accepted else None,
        low=low,
        high=high,
    )


def calibrate(
    examples: Sequence[Example],
    target_error: float,
    confidence: float,
    signal: str,
    holdout: float = 0.2,
    seed: int = 0,
    unreviewed: Sequence[float] | None = None,
) -> Calibration:
    cal, held = split(examples, holdout, seed)
    selection = select_threshold(cal, target_error, confidence, unreviewed)
    result = Calibration(
        status="rule",
        message="",
        target_error=target_error,
        confidence=confidence,
        signal=signal,
        n_calibration=len(cal),
        n_holdout=len(held),
        selection=selection,
        calibrator=_calibrator_points(cal),
        guarantee="population" if unreviewed is None else "dataset",
    )
    if selection.threshold is None:
        needed = reviews_needed(cal, target_error, confidence)
        result.more_reviews_needed = needed
        result.status = "too_few" if needed is not None else "no_rule"
        result.message = _no_rule_message(len(cal), target_error, confidence, needed)
        return result
    chosen = selection.chosen
    result.message = (
        f"accept when {signal} >= {selection.threshold:.4g}: {chosen.accepted} of {len(cal)} "
        f"items with a reference label ({chosen.accepted / len(cal):.0%}), {chosen.errors} wrong;"
        " error at most "
        f"{chosen.upper:.3f} with probability {confidence:g} (target {target_error:g})"
    )
    if held:
        result.holdout = check_holdout(held, selection.threshold, confidence)
        if result.holdout.accepted and result.holdout.low > target_error:
            result.status = "refused_by_holdout"
            result.message += (
                f"; REFUSED: on {len(held)} held-out items the error is "
                f"{result.holdout.error:.3f}, above the target even at its lower bound"
            )
    return result


def _calibrator_points(examples: Sequence[Example]) -> list[tuple[float, float]]:
    """The calibrator as (score, P(right)) at each distinct score, for the report."""
    scores = sorted({e.score for e in examples})
    fitted = probabilities([Example("", s, True) for s in scores], examples)
    return [(s, round(p, 4)) for s, p in zip(scores, fitted, strict=True)]


def _no_rule_message(n: int, target_error: float, confidence: float, needed: int | None) -> str:
    if needed is None:
        return (
            f"no threshold keeps the error under {target_error:g}: on {n} items with a reference "
            "label even the "
            "most confident labels are wrong too often; review more items, improve the guideline "
            "or the model, or choose a larger --target-error"
        )
    return (
        f"{n} items with a reference label are too few to guarantee an error under "
        f"{target_error:g} with probability {confidence:g}; about {needed} more blind reviews "
        "(or imported labels) would let the best threshold pass if its current error rate holds"
    )


def examples(
    data: GuidelineData, annotator: str, reference: str = HUMANS
) -> tuple[str | None, list[Example]]:
    """The reviewed items of a model annotator as calibration examples: its score and whether it
    was right. The score is the first signal its labels have of: support (the pipeline's
    decisions on one label out of a fixed set), agreement (its other decisions), stated
    confidence (an imported model)."""
    own = data.by_item(annotator)
    ref = data.reference(reference)
    signal = next(
        (s for s in SIGNALS if any(s in a.signals for a in own.values())),
        None,
    )
    if signal is None:
        return None, []
    found = [
        Example(item, a.signals[signal], a.label == ref[item])
        for item, a in sorted(own.items())
        if item in ref and signal in a.signals and not a.signals.get("failed_share")
    ]
    return signal, found


def unreviewed_scores(
    data: GuidelineData, annotator: str, signal: str, reference: str = HUMANS
) -> list[float]:
    """The scores of the annotator's labels that have no reference label: the items a rule with
    the `dataset` guarantee speaks for."""
    ref = data.reference(reference)
    return [
        a.signals[signal]
        for item, a in data.by_item(annotator).items()
        if item not in ref and signal in a.signals and not a.signals.get("failed_share")
    ]
