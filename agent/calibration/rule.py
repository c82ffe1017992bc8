"""The acceptance rule as stored and applied: what a verdict must reach to be accepted without a
person (`Thresholds`), where a run's thresholds come from (flags, else the latest calibration
stored for its guideline and model, else defaults; for a student model no auto-accepting until
it is calibrated), the route of one verdict (`route`), and routing the decided items again under
a new rule (`reroute`, `labelagent calibrate --apply`)."""

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from labelagent.consistency import item_supports
from labelagent.guidelines import Guideline
from labelagent.records import Verdict
from labelagent.store import rules
from labelagent.store.db import read_only, transaction
from labelagent.store.keys import audit_key
from labelagent.store.log import draft_votes, now, replace_decisions
from labelagent.store.students import PREFIX as STUDENT_PREFIX

# Calibration rules name their model from this schema version on; `migrate` leaves older rules
# without one, so no rule in an older log applies.
RULES_NAME_MODEL = 3
# Rules on these signals of the pipeline's own verdicts route later runs; a rule on an imported
# model's stated confidence does not.
APPLIED_SIGNALS = ("agreement", "support")


class Thresholds(BaseModel):
    """What a verdict must reach to be accepted without a person. `source` says where the numbers
    came from: defaults, flags, or a calibration stored in the database."""

    min_agreement: float = 0.8
    min_confidence: float = 0.5
    min_support: float = 0.0  # set by a calibrated rule on support (labelagent.consistency.support)
    audit_share: float = 0.05
    # A calibrated rule on agreement or support across every model's samples already prices a
    # disagreeing jury member in, so it turns this off.
    jury_disagreement: bool = True
    # False: nothing is accepted without a person (a student model before its first calibration)
    auto_accept: bool = True
    source: str = "defaults"

    def merged(self, **overrides: float | None) -> "Thresholds":
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        return self.model_copy(update={**given, "source": f"{self.source}+flags"})


def audit_draw(item_id: str, guideline_hash: str, key: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) fixed by the item and the log's secret key (an HMAC), so a
    resumed run audits the same items, and whoever chooses the item ids cannot tell which."""
    message = f"{seed}:{guideline_hash}:{item_id}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(
    verdict: Verdict,
    thresholds: Thresholds,
    item_id: str,
    guideline_hash: str,
    key: str,
    seed: int = 0,
) -> tuple[str, list[str]]:
    """The route and its reasons. Reads only the verdict (what the models answered), never the
    item; `key` is the log's audit key (labelagent.store.keys.audit_key)."""
    if verdict.label is None:
        return "escalated", ["model_failed"]
    reasons = []
    if verdict.agreement is not None and verdict.agreement < thresholds.min_agreement:
        reasons.append("low_agreement")
    if verdict.confidence is not None and verdict.confidence < thresholds.min_confidence:
        reasons.append("low_confidence")
    if verdict.support is not None and verdict.support < thresholds.min_support:
        reasons.append("low_support")
    if verdict.disagreeing_models and thresholds.jury_disagreement:
        reasons.append("jury_disagreement")
    if verdict.n_failed:
        reasons.append("failed_samples")
    if not thresholds.auto_accept:
        reasons.append("uncalibrated")
    if reasons:
        return "escalated", reasons
    if audit_draw(item_id, guideline_hash, key, seed) < thresholds.audit_share:
        return "escalated", ["audit"]
    return "auto", []


def thresholds_for(
    db: str | Path,
    guideline_hash: str,
    model: str,
    min_agreement: float | None = None,
    min_confidence: float | None = None,
    audit_share: float | None = None,
) -> Thresholds:
    """Read without upgrading the log: `label` upgrades it only once its input has been checked."""
    base = Thresholds()
    if Path(db).exists():
        with read_only(db, any_version=True) as version:
            rule = latest_rule(db, guideline_hash, model) if version >= RULES_NAME_MODEL else None
        if rule and rule.get("signal", "agreement") in APPLIED_SIGNALS:
            base = from_rule(rule)
    if base.source == "defaults" and model.startswith(STUDENT_PREFIX):
        base = Thresholds(auto_accept=False, source="student without a calibration")
    return base.merged(
        min_agreement=min_agreement, min_confidence=min_confidence, audit_share=audit_share
    )


def from_rule(rule: dict) -> Thresholds:
    """The routing thresholds a stored calibration rule stands for."""
    known = {k: rule[k] for k in Thresholds.model_fields if k in rule and k != "source"}
    return Thresholds(**known, source=f"calibration {rule['calibration_id']}")


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def store_rule(
    db: str | Path, guideline_hash: str, model: str, rule: dict[str, Any], details: dict[str, Any]
) -> str:
    """Keep a rule `labelagent calibrate` chose, with the data it came from; returns its id."""
    calibration_id = f"cal-{uuid.uuid4().hex[:12]}"
    with transaction(db) as con:
        rules.add_calibration(
            con, calibration_id, guideline_hash, model, _json(rule), _json(details), now()
        )
    return calibration_id


def latest_rule(db: str | Path, guideline_hash: str, model: str) -> dict[str, Any] | None:
    """The newest rule stored for this guideline and model, if any."""
    with transaction(db) as con:
        found = rules.latest_calibration(con, guideline_hash, model)
    if found is None:
        return None
    created = found.created_at.strftime("%Y-%m-%d %H:%M:%S")
    return {"calibration_id": found.calibration_id, **json.loads(found.rule), "created_at": created}


@dataclass(frozen=True)
class Rerouted:
    """How many decided items `calibrate --apply` moved each way."""

    to_auto: int
    to_escalated: int
    reasons_changed: int
    unchanged: int


def reroute(db: str | Path, guideline: Guideline, model: str, thresholds: Thresholds) -> Rerouted:
    """Route the model's decided items again under `thresholds`."""
    moved = {"to_auto": 0, "to_escalated": 0, "reasons_changed": 0, "unchanged": 0}
    guideline_hash = guideline.content_hash
    with transaction(db) as con:
        rows = rules.decisions_of(con, guideline_hash, model)
        supports = item_supports(guideline, draft_votes(con, guideline_hash))
        key = audit_key(con)
        changed = []
        for row in rows:
            verdict = Verdict(
                label=None if row.label is None else json.loads(row.label),
                agreement=row.agreement,
                confidence=row.confidence,
                support=supports.get(row.item_id),
                n_samples=row.n_samples,
                n_failed=row.n_failed,
                disagreeing_models=json.loads(row.disagreeing_models),
            )
            new_route, reasons = route(verdict, thresholds, row.item_id, guideline_hash, key)
            if new_route == row.route and reasons == json.loads(row.reasons):
                moved["unchanged"] += 1
                continue
            if new_route == row.route:
                moved["reasons_changed"] += 1
            else:
                moved["to_auto" if new_route == "auto" else "to_escalated"] += 1
            changed.append(
                {**vars(row), "route": new_route, "reasons": _json(reasons),
                 "rule": _json(thresholds.model_dump())}
            )  # fmt: skip
        if changed:
            replace_decisions(con, changed)
    return Rerouted(**moved)
