"""Escalation: every verdict is routed `auto` or `escalated`, with its reasons."""

import hashlib
import hmac

from pydantic import BaseModel

from agent.records import Verdict


class Thresholds(BaseModel):
    """What a verdict must reach to be accepted without a person. `source` says where the numbers
    came from: defaults, flags, or a calibration stored in the database."""

    min_agreement: float = 0.8
    min_confidence: float = 0.5
    min_support: float = 0.0  # set by a calibrated rule on support (agent.consistency.support)
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
    item; `key` is the log's audit key (agent.store.keys.audit_key)."""
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
