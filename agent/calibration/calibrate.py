"""`labelagent calibrate`: read the reviewed items of one guideline and model from the log,
choose the rule (`learn`), store it with the data it came from, and optionally route the decided
items again under it (`rule`)."""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labelagent.calibration.cascade import CascadeCalibrationResult, run_cascade_calibration
from labelagent.calibration.learn import (
    Calibration,
    HoldoutCheck,
    calibrate,
    examples,
    unreviewed_scores,
)
from labelagent.calibration.rule import APPLIED_SIGNALS, Rerouted, from_rule, reroute, store_rule
from labelagent.cascade import is_cascade
from labelagent.errors import ConfigError
from labelagent.guidelines import load_guideline
from labelagent.store import students
from labelagent.store.annotations import HUMANS, GuidelineData, guideline_hashes, load
from labelagent.store.db import read_only
from labelagent.student import STUDENT

GATES = {"agreement": "min_agreement", "support": "min_support", "confidence": "min_confidence"}


@dataclass(frozen=True)
class CalibrationResult:
    """`labelagent calibrate` on one model: what `learn` found and, when it found a rule, the rule
    as stored (`rule`, with the pipeline's gates) and what --apply moved."""

    guideline: str
    guideline_hash: str
    model: str
    found: Calibration
    calibration_id: str | None = None
    rule: dict[str, Any] | None = None
    rerouted: Rerouted | None = None

    @property
    def status(self) -> str:
        return self.found.status

    @property
    def message(self) -> str:
        return self.found.message

    @property
    def n_calibration(self) -> int:
        return self.found.n_calibration

    @property
    def n_holdout(self) -> int:
        return self.found.n_holdout

    @property
    def holdout(self) -> HoldoutCheck | None:
        return self.found.holdout

    @property
    def applies_to_labeling(self) -> bool:
        """Whether later labeling runs route by the stored rule (not an imported model's
        stated confidence)."""
        return self.rule is not None and self.rule["signal"] in APPLIED_SIGNALS

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape: the found calibration's fields flat beside the names."""
        out = {"guideline": self.guideline, "guideline_hash": self.guideline_hash}
        out |= {"model": self.model} | self.found.as_dict()
        if self.rule is not None:
            out |= {"rule": self.rule, "calibration_id": self.calibration_id}
        if self.rerouted is not None:
            out["rerouted"] = asdict(self.rerouted)
        return out


def resolve_guideline(db: str | Path, given: str | None) -> str:
    """A guideline file, a guideline name in the log, or the only guideline with labels."""
    known = guideline_hashes(db)
    if given is None:
        if len({name for _, name in known}) == 1:
            return known[0][0]
        names = ", ".join(sorted({name for _, name in known})) or "none"
        raise ConfigError(f"say which guideline with --guideline (labeled in the log: {names})")
    if Path(given).is_file():
        return load_guideline(given).content_hash
    for ghash, name in known:
        if given in (name, ghash):
            return ghash
    raise ConfigError(f"no labels for guideline {given!r} in {db}")


def default_annotator(data: GuidelineData) -> str:
    counts: dict[str, int] = {}
    for a in data.annotations:
        if a.kind == "model" and "agreement" in a.signals:
            counts[a.annotator] = counts.get(a.annotator, 0) + 1
    if not counts:
        raise ConfigError(
            f"no decisions for guideline {data.guideline.name!r}: run `labelagent label` first,"
            " or name an imported model with --annotator"
        )
    return max(counts, key=lambda name: counts[name])


def run_calibration(
    db: str | Path,
    target_error: float,
    confidence: float,
    guideline: str | None = None,
    annotator: str | None = None,
    reference: str = HUMANS,
    holdout: float = 0.2,
    apply: bool = False,
    guarantee: str = "population",
) -> CalibrationResult | CascadeCalibrationResult:
    with read_only(db):
        ghash = resolve_guideline(db, guideline)
        data = load(db, ghash)
    name = annotator or default_annotator(data)
    if name == STUDENT:
        name = students.load(db, ghash).student_id
    if name not in data.annotators("model"):
        raise ConfigError(f"{name!r} is not a model in the log for this guideline")
    if is_cascade(name):
        if guarantee != "population":
            raise ConfigError("a cascade is calibrated with --guarantee population only")
        return run_cascade_calibration(
            db, data.guideline, name, target_error, confidence, reference, holdout, apply
        )
    if reference != HUMANS and reference not in data.annotators():
        known = ", ".join(data.annotators())
        raise ConfigError(f"no annotator {reference!r} for this guideline; known: {known}")
    signal, found = examples(data, name, reference)
    if not found:
        raise ConfigError(
            f"no item has both a label from {name} and an independent human label"
            f" (reference {reference!r}): review blind items or import labels first"
        )
    if guarantee not in ("population", "dataset"):
        raise ConfigError(f"--guarantee must be population or dataset, not {guarantee!r}")
    unreviewed = (
        unreviewed_scores(data, name, signal or "", reference) if guarantee == "dataset" else None
    )
    if unreviewed == []:
        raise ConfigError(
            f"every item {name} labeled has a reference label: --guarantee dataset has no"
            " unreviewed items to speak for; use --guarantee population"
        )
    result = calibrate(found, target_error, confidence, signal or "", holdout, 0, unreviewed)
    rule = result.rule
    if rule is None:
        return CalibrationResult(data.guideline.name, ghash, name, result)
    rule |= _routing_thresholds(signal or "", rule["threshold"])
    details = {
        "reference": reference,
        "holdout_share": holdout,
        "steps": [asdict(step) for step in result.selection.steps],
        "holdout": None if result.holdout is None else asdict(result.holdout),
        "calibrator": result.calibrator,
        "examples": [[e.item_id, e.score, e.correct] for e in found],
    }
    calibration_id = store_rule(db, ghash, name, rule, details)
    rerouted = None
    if apply:
        thresholds = from_rule({**rule, "calibration_id": calibration_id})
        rerouted = reroute(db, data.guideline, name, thresholds)
    return CalibrationResult(
        data.guideline.name, ghash, name, result, calibration_id, rule, rerouted
    )


def _routing_thresholds(signal: str, threshold: float) -> dict[str, Any]:
    """The rule in the pipeline's terms: the chosen signal gates alone."""
    gates: dict[str, Any] = {gate: 0.0 for gate in GATES.values()}
    return gates | {GATES[signal]: threshold, "jury_disagreement": False}
