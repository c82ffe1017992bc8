"""Calibrating a cascade: every stage's threshold at once, with one guarantee for all the items
any stage accepts (`labelagent calibrate` on a cascade's decisions), and routing the decided
items again under the rule without new model calls (`--apply`).

The examples are the reviewed items that went through every stage (audit and calibration-share
items, `labelagent.cascade`), so each stage's verdict and score exist for each of them. The method
is a joint fixed-sequence test (Learn-then-Test, Angelopoulos et al. 2021) along a one-parameter
family of threshold vectors fixed from the examples' scores alone, before any label is read
(`family`): at step j every stage's threshold is the quantile of its own scores that lets it
accept about a share j / MAX_LEVELS of the items, strictest first. Each step is tested with the
one-sided Clopper-Pearson bound at level C on the error of everything the whole cascade accepts
(whichever stage accepts an item, its label is the one counted), with the whole risk 1 - C and
no split across stages, because the sequence does not depend on the labels; the loosest step
reached before the first failure is kept (`learn.fixed_sequence`). Then with probability at
least C the error among all the items accepted by any stage is at most E.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from labelagent.calibration.learn import (
    MAX_LEVELS,
    Example,
    Selection,
    Step,
    check_holdout,
    fixed_sequence,
    reviews_needed_for,
    split,
)
from labelagent.calibration.rule import APPLIED_SIGNALS, Rerouted, Thresholds, route, store_rule
from labelagent.cascade import stage_models, stage_rule_thresholds, stage_score, tried_stage
from labelagent.consistency import build_verdict
from labelagent.evals.metrics import binomial_upper
from labelagent.guidelines import Guideline
from labelagent.records import Decision, Sample, Verdict
from labelagent.store.annotations import HUMANS, canonical, load
from labelagent.store.cascades import decided_drafts
from labelagent.store.db import read_only, transaction
from labelagent.store.keys import audit_key
from labelagent.store.log import decision_row, replace_decisions
from labelagent.store.rules import StoredDecision, decisions_of
from labelagent.tasks import task_for


@dataclass(frozen=True)
class CascadeExample:
    """One reviewed item that went through every stage: per stage, its score (None when the
    stage cannot accept it: a failed sample) and whether the stage's label is right."""

    item_id: str
    scores: tuple[float | None, ...]
    correct: tuple[bool, ...]


@dataclass(frozen=True)
class CascadeSummary:
    """The simulated cascade on some examples: how many it accepts, how many wrongly, the
    error's one-sided bound, and how many each stage accepts."""

    items: int
    accepted: int
    errors: int
    coverage: float
    error: float | None
    error_bound: float | None
    by_stage: list[int]


@dataclass(frozen=True)
class CascadeHoldout:
    """The cascade on the held-out items, with the error's two-sided interval."""

    items: int
    accepted: int
    errors: int
    error: float | None
    low: float
    high: float
    coverage: float
    error_bound: float | None
    by_stage: list[int]


@dataclass(frozen=True)
class CascadeCalibration:
    """What the joint test found; `thresholds` one per stage (None: the stage accepts
    nothing)."""

    status: str  # rule | no_rule | too_few | refused_by_holdout
    target_error: float
    confidence: float
    n_calibration: int
    n_holdout: int
    thresholds: list[float | None]
    steps: list[Step]
    calibration: CascadeSummary
    holdout: CascadeHoldout | None
    more_reviews_needed: int | None
    message: str


@dataclass(frozen=True)
class CascadeRerouted(Rerouted):
    needs_calls: int  # decisions kept: a stage they must reach has no drafts


@dataclass(frozen=True)
class CascadeCalibrationResult:
    """`labelagent calibrate` on a cascade: what the joint test found (None: no example, see
    `message`) and, when it found a rule, the rule as stored and what --apply moved."""

    guideline: str
    guideline_hash: str
    model: str
    found: CascadeCalibration | None
    no_examples: str = ""
    calibration_id: str | None = None
    rule: dict[str, Any] | None = None
    rerouted: CascadeRerouted | None = None

    @property
    def status(self) -> str:
        return "no_examples" if self.found is None else self.found.status

    @property
    def message(self) -> str:
        return self.no_examples if self.found is None else self.found.message

    @property
    def n_calibration(self) -> int:
        return 0 if self.found is None else self.found.n_calibration

    @property
    def n_holdout(self) -> int:
        return 0 if self.found is None else self.found.n_holdout

    @property
    def holdout(self) -> CascadeHoldout | None:
        return None if self.found is None else self.found.holdout

    @property
    def applies_to_labeling(self) -> bool:
        return self.rule is not None and self.rule["signal"] in APPLIED_SIGNALS

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape: the found calibration's fields flat beside the names."""
        out: dict[str, Any] = {"guideline": self.guideline, "guideline_hash": self.guideline_hash}
        out["model"] = self.model
        if self.found is None:
            none = {"status": self.status, "message": self.message}
            return out | none | {"n_calibration": 0, "n_holdout": 0}
        out |= asdict(self.found)
        if self.rule is not None:
            out |= {"calibration_id": self.calibration_id, "rule": self.rule}
        if self.rerouted is not None:
            out["rerouted"] = asdict(self.rerouted)
        return out


def family(examples: Sequence[CascadeExample]) -> list[tuple[float | None, ...]]:
    """The threshold vectors tested, strictest first: at step j of MAX_LEVELS every stage's
    threshold is the (1 - j / MAX_LEVELS) quantile of its scores on the examples (None: a stage
    with no score accepts nothing). Labels are never read."""
    n_stages = len(examples[0].scores) if examples else 0
    by_stage = [[e.scores[i] for e in examples if e.scores[i] is not None] for i in range(n_stages)]
    steps: list[tuple[float | None, ...]] = []
    for share in np.linspace(0, 1, MAX_LEVELS + 1):
        step = tuple(
            float(np.quantile(scores, 1 - share)) if scores else None for scores in by_stage
        )
        if not steps or step != steps[-1]:
            steps.append(step)
    return steps


def counts(
    examples: Sequence[CascadeExample], thresholds: Sequence[float | None]
) -> tuple[int, int]:
    """How many examples the cascade accepts under `thresholds`, and how many of them wrongly."""
    accepted = [right for stage, right in outcome(examples, thresholds) if stage is not None]
    return len(accepted), sum(not right for right in accepted)


def select_stages(
    examples: Sequence[CascadeExample], target_error: float, confidence: float
) -> Selection:
    """The cascade's thresholds (`threshold` None: no step passed), by the joint test."""

    def upper(k: int, n: int, _: object) -> float:
        return binomial_upper(k, n, confidence) if n else 1.0

    def accepted(thresholds: tuple[float | None, ...]) -> tuple[int, int]:
        return counts(examples, thresholds)

    return fixed_sequence(family(examples), accepted, upper, len(examples), target_error)


def _accepts(e: CascadeExample, stage: int, threshold: float | None) -> bool:
    return threshold is not None and e.scores[stage] is not None and e.scores[stage] >= threshold


def outcome(examples: Sequence[CascadeExample], thresholds: Sequence[float | None]) -> list:
    """The simulated cascade: per example, the stage that accepts it and whether it is right
    (stage None: escalated to people)."""
    found = []
    for e in examples:
        stage = next((i for i, t in enumerate(thresholds) if _accepts(e, i, t)), None)
        found.append((stage, None if stage is None else e.correct[stage]))
    return found


def summary(
    examples: Sequence[CascadeExample], thresholds: Sequence[float | None], confidence: float
) -> CascadeSummary:
    result = outcome(examples, thresholds)
    accepted = [right for stage, right in result if stage is not None]
    errors = sum(not right for right in accepted)
    return CascadeSummary(
        items=len(examples),
        accepted=len(accepted),
        errors=errors,
        coverage=len(accepted) / len(examples) if examples else 0.0,
        error=errors / len(accepted) if accepted else None,
        error_bound=binomial_upper(errors, len(accepted), confidence) if accepted else None,
        by_stage=[sum(stage == i for stage, _ in result) for i in range(len(thresholds))],
    )


def calibrate_cascade(
    examples: Sequence[CascadeExample],
    target_error: float,
    confidence: float,
    holdout: float = 0.2,
) -> CascadeCalibration:
    cal, held = split(examples, holdout)
    selection = select_stages(cal, target_error, confidence)
    n_stages = len(cal[0].scores) if cal else len(examples[0].scores)
    thresholds = list(selection.threshold or [None] * n_stages)
    found = CascadeCalibration(
        status="rule",
        target_error=target_error,
        confidence=confidence,
        n_calibration=len(cal),
        n_holdout=len(held),
        thresholds=thresholds,
        steps=selection.steps,
        calibration=summary(cal, thresholds, confidence),
        holdout=None,
        more_reviews_needed=None,
        message="",
    )
    if selection.threshold is None:
        needed = reviews_needed_for(
            [counts(cal, t) for t in family(cal)], len(cal), target_error, confidence
        )
        return replace(
            found,
            more_reviews_needed=needed,
            status="too_few" if needed is not None else "no_rule",
            message=_no_rule(len(cal), target_error, confidence, needed),
        )
    s = found.calibration
    message = (
        f"cascade thresholds {_shown(thresholds)}: {s.accepted} of {len(cal)} reviewed items"
        f" accepted ({s.coverage:.0%}; by stage {s.by_stage}), {s.errors} wrong; with"
        f" probability {confidence:g} the error of everything accepted is at most"
        f" {target_error:g} (one joint test of the {len(thresholds)} stages' thresholds)"
    )
    if not held:
        return replace(found, message=message)
    checked = held_out(held, thresholds, confidence)
    if checked.accepted and checked.low > target_error:
        return replace(
            found,
            status="refused_by_holdout",
            holdout=checked,
            message=message + f"; REFUSED: on {len(held)} held-out items the error is"
            f" {checked.error:.3f}, above the target even at its lower bound",
        )
    return replace(found, holdout=checked, message=message)


def held_out(
    held: Sequence[CascadeExample], thresholds: Sequence[float | None], confidence: float
) -> CascadeHoldout:
    """The cascade's summary on the held-out items, with the error's two-sided interval."""
    h = summary(held, thresholds, confidence)
    accepted = [
        Example(e.item_id, 1.0, right)
        for e, (stage, right) in zip(held, outcome(held, thresholds), strict=True)
        if stage is not None
    ]
    interval = check_holdout(accepted, 1.0, confidence)
    return CascadeHoldout(**asdict(h), low=interval.low, high=interval.high)


def _shown(thresholds: Sequence[float | None]) -> str:
    return " > ".join("none" if t is None else f"{t:.4g}" for t in thresholds)


def _no_rule(n: int, target_error: float, confidence: float, needed: int | None) -> str:
    if needed is None:
        return (
            f"no thresholds keep the error under {target_error:g}: on {n} reviewed items"
            " that went through every stage even the surest labels are wrong too often"
        )
    return (
        f"{n} reviewed items that went through every stage are too few to guarantee an error"
        f" under {target_error:g} with probability {confidence:g}; about {needed} more reviews of"
        " such items (audit, --calibration-share, or imported labels) would let the best"
        " thresholds pass if their current error rate holds"
    )


def stage_verdicts(
    con: duckdb.DuckDBPyConnection, guideline: Guideline, key: str
) -> dict[str, list[Verdict | None]]:
    """Item -> each stage's verdict from the stored drafts of the cascade `key`'s decided items
    (None for a stage whose models have no drafts for the item)."""
    stages = stage_models(key)
    samples: dict[str, dict[str, list[Sample]]] = {}
    for draft in decided_drafts(con, guideline.content_hash, key):
        sample = Sample(
            model=draft.model,
            sample_index=draft.sample_index,
            label=None if draft.label is None else json.loads(draft.label),
            confidence=draft.confidence,
            error=draft.error,
        )
        samples.setdefault(draft.item_id, {}).setdefault(draft.model, []).append(sample)
    verdicts = {}
    for item_id, by_model in samples.items():
        verdicts[item_id] = [
            build_verdict(guideline, {m: by_model[m] for m in models})
            if all(m in by_model for m in models)
            else None
            for models in stages
        ]
    return verdicts


def cascade_examples(
    db: str | Path, guideline: Guideline, key: str, reference: str = HUMANS
) -> list[CascadeExample]:
    """The reviewed items of the cascade `key` that have every stage's verdict."""
    with read_only(db):
        with transaction(db) as con:
            verdicts = stage_verdicts(con, guideline, key)
        ref = load(db, guideline.content_hash).reference(reference)
    found = []
    for item_id, stages in sorted(verdicts.items()):
        if item_id not in ref or any(v is None for v in stages):
            continue
        scores = tuple(stage_score(v) for v in stages)
        correct = tuple(
            v.label is not None and canonical(json.dumps(v.label)) == ref[item_id] for v in stages
        )
        found.append(CascadeExample(item_id, scores, correct))
    return found


def run_cascade_calibration(
    db: str | Path,
    guideline: Guideline,
    key: str,
    target_error: float,
    confidence: float,
    reference: str = HUMANS,
    holdout: float = 0.2,
    apply: bool = False,
) -> CascadeCalibrationResult:
    examples = cascade_examples(db, guideline, key, reference)
    names = (guideline.name, guideline.content_hash, key)
    if not examples:
        return CascadeCalibrationResult(
            *names,
            found=None,
            no_examples=f"no item labeled by the cascade {key} went through every stage and has"
            f" an independent human label (reference {reference!r}): review its audit items, or"
            " label a sample with --calibration-share and import its labels",
        )
    found = calibrate_cascade(examples, target_error, confidence, holdout)
    if found.status != "rule":
        return CascadeCalibrationResult(*names, found=found)
    signal = "support" if task_for(guideline).has_support else "agreement"
    rule = {
        "signal": signal,
        "stages": [
            {"models": models, "threshold": t}
            for models, t in zip(stage_models(key), found.thresholds, strict=True)
        ],
        "target_error": target_error,
        "confidence": confidence,
        "method": "joint fixed-sequence Clopper-Pearson along per-stage score quantiles",
        "coverage": found.calibration.coverage,
        "error_bound": found.calibration.error_bound,
    }
    details = {
        "reference": reference,
        "holdout_share": holdout,
        "holdout": None if found.holdout is None else asdict(found.holdout),
        "steps": [asdict(step) for step in found.steps],
        "examples": [[e.item_id, list(e.scores), list(e.correct)] for e in examples],
    }
    calibration_id = store_rule(db, guideline.content_hash, key, rule, details)
    rerouted = None
    if apply:
        stored = {**rule, "calibration_id": calibration_id}
        stages = [stage_rule_thresholds(stored, s["threshold"]) for s in rule["stages"]]
        rerouted = reroute_cascade(db, guideline, key, stages)
    return CascadeCalibrationResult(
        *names, found=found, calibration_id=calibration_id, rule=rule, rerouted=rerouted
    )


def reroute_cascade(
    db: str | Path, guideline: Guideline, key: str, stages: Sequence[Thresholds]
) -> CascadeRerouted:
    """Route the cascade's decided items again under `stages`' thresholds, from their stored
    drafts. An item that would need a stage it has no drafts for keeps its decision
    (`needs_calls`: label it again to go on). A decision of another stage with the same route
    counts as `reasons_changed`."""
    moved = {"to_auto": 0, "to_escalated": 0, "reasons_changed": 0, "unchanged": 0}
    moved["needs_calls"] = 0
    with transaction(db) as con:
        rows = decisions_of(con, guideline.content_hash, key)
        verdicts = stage_verdicts(con, guideline, key)
        secret = audit_key(con)
        changed = []
        for row in rows:
            new = _walk(guideline, row, verdicts.get(row.item_id, []), stages, secret)
            if new is None:
                moved["needs_calls"] += 1
            elif all(new[k] == getattr(row, k) for k in ("route", "reasons", "stage")):
                moved["unchanged"] += 1
            else:
                same = new["route"] == row.route
                kind = "to_auto" if new["route"] == "auto" else "to_escalated"
                moved["reasons_changed" if same else kind] += 1
                changed.append(new)
        if changed:
            replace_decisions(con, changed)
    return CascadeRerouted(**moved)


def _walk(
    guideline: Guideline,
    row: StoredDecision,
    verdicts: list[Verdict | None],
    stages: Sequence[Thresholds],
    secret: str,
) -> dict[str, Any] | None:
    """The item's decision row under the new thresholds; None when a stage it must reach has no
    drafts."""
    tried: list[dict[str, Any]] = []
    chosen = None
    for index, thresholds in enumerate(stages):
        verdict = verdicts[index] if index < len(verdicts) else None
        if verdict is None:
            return None
        routed, reasons = route(verdict, thresholds, row.item_id, guideline.content_hash, secret)
        accepted = routed == "auto" or reasons == ["audit"]
        tried.append(tried_stage(stage_models(row.model)[index], verdict, accepted, reasons))
        if accepted:
            chosen = (index, verdict, routed, reasons)
            break
    if chosen is None:
        tried[-1]["route"] = "escalated"
        every = list(dict.fromkeys(r for stage in tried for r in stage["reasons"]))
        chosen = (len(tried) - 1, verdict, "escalated", every)
    index, verdict, routed, reasons = chosen
    decision = Decision(
        item_id=row.item_id,
        guideline_hash=row.guideline_hash,
        run_id=row.run_id,
        model=row.model,
        prompt_hash=row.prompt_hash,
        verdict=verdict,
        route=routed,
        reasons=reasons,
        rule=stages[index].model_dump(),
        stage=index,
        stages_tried=tried,
    )
    return decision_row(decision)
