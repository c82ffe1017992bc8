"""The escalation queue: which items a reviewer gets, leases on them, and what a review writes.

A reviewer claims a small batch in one transaction; a claim is a lease that expires, so two
reviewers never hold the same item and an abandoned item returns to the queue. DuckDB's file lock
makes the claim atomic across processes, the store's in-process lock across browser sessions.
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from labelagent.calibration.rule import audit_draw
from labelagent.errors import ConfigError
from labelagent.guidelines import parse_guideline
from labelagent.records import Item
from labelagent.store.db import read_only, transaction
from labelagent.store.keys import audit_key
from labelagent.store.log import now
from labelagent.store.review import queue as store
from labelagent.store.review.queue import Escalated, QueueFilter
from labelagent.tasks import task_for

LABEL_ACTIONS = ("accept", "correct", "adjudicate", "import")
ACTIONS = ("accept", "correct", "skip", "flag", "adjudicate")
DEFAULT_LEASE = timedelta(minutes=10)


class ClaimLost(ConfigError):
    """The reviewer's lease on an item ran out and another reviewer holds it now, or the
    reviewer already reviewed it (from another tab, or a retried request)."""


@dataclass
class QueueItem:
    item_id: str
    guideline_hash: str
    guideline_name: str
    task: str
    fields: dict[str, Any]
    llm_label: Any
    agreement: float | None
    confidence: float | None
    votes: dict[str, int]
    reasons: list[str]
    disagreeing_models: list[str]
    blind: bool
    priority: float
    rationales: list[str] = field(default_factory=list)
    stages_tried: list[dict[str, Any]] = field(default_factory=list)

    @property
    def why(self) -> str:
        """Why this item is here and why this early in the queue, in words."""
        parts = []
        if "audit" in self.reasons:
            parts.append("random audit of a label that would have been accepted (first in line)")
        if self.agreement is not None and "audit" not in self.reasons:
            parts.append(f"{self.agreement:.0%} of samples agreed")
        if self.disagreeing_models:
            parts.append(f"models disagreed: {', '.join(self.disagreeing_models)}")
        others = [r for r in self.reasons if r not in ("audit", "jury_disagreement")]
        if others:
            parts.append("reasons: " + ", ".join(r.replace("_", " ") for r in others))
        return f"priority {self.priority:.2f}: " + "; ".join(parts)

    @property
    def stage_reasons(self) -> list[str]:
        """One line per stage of a cascade the item went through: its models, label and score,
        and where the item went and why (no lines for a one-stage run)."""
        if len(self.stages_tried) < 2:
            return []
        return [stage_line(i, stage) for i, stage in enumerate(self.stages_tried)]


def stage_line(index: int, stage: dict[str, Any]) -> str:
    label = stage.get("label")
    shown = "—" if label is None else label if isinstance(label, str) else json.dumps(label)
    score = stage.get("score")
    went = {"auto": "accepted", "next": "to the next stage", "escalated": "to people"}
    reasons = ", ".join(r.replace("_", " ") for r in stage.get("reasons", []))
    return (
        f"stage {index + 1} ({', '.join(stage.get('models', []))}): label {shown}, score "
        f"{'—' if score is None else f'{score:.3f}'} -> {went.get(stage.get('route'), '?')}"
        + (f" ({reasons})" if reasons else "")
    )


def set_settings(db: str | Path, guideline: str, overlap: int, blind_share: float) -> int:
    """Set overlap and blind share for a guideline (name or hash); returns how many matched."""
    if overlap < 1 or not 0 <= blind_share <= 1:
        raise ConfigError("--overlap must be 1 or more and --blind-share between 0 and 1")
    with transaction(db) as con:
        hashes = store.guideline_hashes(con, guideline)
        for ghash in hashes:
            store.put_settings(con, ghash, overlap, blind_share)
    return len(hashes)


def known_guideline(db: str | Path, guideline: str) -> bool:
    """Whether the log has a guideline of this name or hash (read without upgrading it)."""
    with read_only(db, any_version=True) as version, transaction(db) as con:
        return version > 0 and bool(store.guideline_hashes(con, guideline))


def is_blind(
    item_id: str, guideline_hash: str, reasons: list[str], blind_share: float, key: str
) -> bool:
    """Audit items always, and a fixed share of the others, are reviewed without the model's
    label, votes or rationale, so the human label stays independent. The share is drawn with the
    log's audit key, so whoever chose the item ids cannot tell which items are blind."""
    return "audit" in reasons or audit_draw(item_id, guideline_hash, key, seed=7919) < blind_share


def claim(
    db: str | Path,
    reviewer: str,
    size: int = 5,
    lease: timedelta = DEFAULT_LEASE,
    where: QueueFilter | None = None,
) -> list[QueueItem]:
    """Lease up to `size` items to `reviewer`, highest priority first (their own live claims
    come back first, so a reload does not lose them)."""
    moment = now()
    with transaction(db) as con:
        store.drop_expired_claims(con, moment)
        rows = store.claimable(con, reviewer, size, where or QueueFilter())
        keys = [(row.decision.item_id, row.decision.guideline_hash) for row in rows]
        store.put_claims(con, keys, reviewer, moment, lease)
        key = audit_key(con)
        items = [queue_item(row.decision, key, row.priority, row.blind_share) for row in rows]
        attach_rationales(con, items)
    return items


def queue_item(decision: Escalated, key: str, priority: float, blind_share: float) -> QueueItem:
    """An escalated decision as a reviewer gets it; `key` is the log's audit key."""
    return QueueItem(
        item_id=decision.item_id,
        guideline_hash=decision.guideline_hash,
        guideline_name=decision.guideline_name,
        task=decision.task,
        fields=decision.fields,
        llm_label=decision.label,
        agreement=decision.agreement,
        confidence=decision.confidence,
        votes=decision.votes,
        reasons=decision.reasons,
        disagreeing_models=decision.disagreeing_models,
        stages_tried=decision.stages_tried,
        priority=priority,
        blind=is_blind(
            decision.item_id, decision.guideline_hash, decision.reasons, blind_share, key
        ),
    )


def attach_rationales(con: Any, items: list[QueueItem], most: int = 5) -> None:
    """Up to `most` distinct rationales per item (none for a blind item), in one query."""
    shown = {(i.item_id, i.guideline_hash): i for i in items if not i.blind}
    for found in store.rationales(con, [item_id for item_id, _ in shown]):
        item = shown.get((found.item_id, found.guideline_hash))
        if item is not None and len(item.rationales) < most:
            item.rationales.append(f"{found.model}: {found.rationale}")


def release(db: str | Path, reviewer: str) -> None:
    """Give back every item the reviewer holds (sign-out)."""
    with transaction(db) as con:
        store.release_claims(con, reviewer)


def submit(
    db: str | Path,
    reviewer: str,
    item: QueueItem,
    action: str,
    label: Any = None,
    note: str = "",
    seconds_on_screen: float | None = None,
) -> None:
    """Record one review and release the item. A label is checked against the guideline."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown review action {action!r}")
    if action in LABEL_ACTIONS and label is None:
        raise ConfigError(f"{action} needs a label")
    with transaction(db) as con:
        if action in LABEL_ACTIONS:
            label = _checked_label(con, item, label)
        if action != "adjudicate" and store.has_reviewed(
            con, reviewer, item.item_id, item.guideline_hash
        ):
            raise ClaimLost(f"you already reviewed {item.item_id}; the second review was not saved")
        if action != "adjudicate":
            _check_claim(con, reviewer, item)
        store.add_review(
            con,
            item.item_id,
            item.guideline_hash,
            reviewer,
            label if action in LABEL_ACTIONS else None,
            action,
            note or None,
            item.blind,
            seconds_on_screen,
        )
        store.release_item(con, item.item_id, item.guideline_hash)


def _check_claim(con: Any, reviewer: str, item: QueueItem) -> None:
    """A review needs the reviewer's claim on the item: once a lease has expired, another reviewer
    may have taken the item and reviewed it already."""
    holder = store.claim_holder(con, item.item_id, item.guideline_hash)
    if holder is None:
        raise ClaimLost(
            f"your claim on {item.item_id} expired and the item went back to the queue; "
            "the review was not saved"
        )
    if holder != reviewer:
        raise ClaimLost(
            f"your claim on {item.item_id} expired and {holder} has it now; "
            "the review was not saved"
        )


def _checked_label(con: Any, item: QueueItem, label: Any) -> Any:
    content = store.guideline_content(con, item.guideline_hash)
    if content is None:
        raise ConfigError(f"guideline {item.guideline_hash} is not in the database")
    guideline = parse_guideline(content, item.guideline_name)
    try:
        return task_for(guideline).normalize(
            guideline, label, Item(item_id=item.item_id, fields=item.fields)
        )
    except ValueError as e:
        raise ConfigError(f"that label does not fit the guideline: {e}") from None
