"""Where routing thresholds come from: flags, else the latest calibration, else defaults (for a
student model: no auto-accepting until it is calibrated). This is the seam `labelagent
calibrate` plugs into."""

from pathlib import Path

from agent.calibration.rule import Thresholds
from agent.store import log
from agent.store.db import read_only
from agent.store.students import PREFIX as STUDENT_PREFIX

# Calibration rules name their model from this schema version on; `migrate` leaves older rules
# without one, so no rule in an older log applies.
RULES_NAME_MODEL = 3
# Rules on these signals of the pipeline's own verdicts route later runs; a rule on an imported
# model's stated confidence does not.
APPLIED_SIGNALS = ("agreement", "support")


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
            rule = (
                log.latest_calibration(db, guideline_hash, model)
                if version >= RULES_NAME_MODEL
                else None
            )
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
