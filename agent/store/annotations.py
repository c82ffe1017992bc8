"""Every label the log holds for a guideline, as plain records: the pipeline's decisions, human
reviews and imported labels (people or models).

Only independent human labels count as a reference: blind reviews and imports, which never saw
the model's output. A reviewer who accepted or corrected the model's label saw it, and agreement
with a label one was shown is not agreement. A student model's labels on the items it was trained
on are no evidence about it either: they are left out, so eval and calibrate judge it only on
items it never learned from.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelagent.consistency import item_supports
from labelagent.guidelines import Guideline, parse_guideline
from labelagent.store.db import transaction
from labelagent.store.log import draft_votes
from labelagent.store.students import trained_items

HUMANS = "humans"  # the reference made of each item's majority of independent human labels


@dataclass(frozen=True)
class Annotation:
    item_id: str
    annotator: str
    kind: str  # model | human
    label: str  # canonical JSON, so labels of every task compare as strings
    independent: bool
    signals: dict[str, float] = field(default_factory=dict)


@dataclass
class GuidelineData:
    guideline: Guideline
    annotations: list[Annotation]
    seen_model_label: int  # human reviews left out because the reviewer saw the model's label
    llm_cost_usd: float
    review_seconds: float
    final_labels: int

    def annotators(self, kind: str | None = None) -> list[str]:
        names = {a.annotator for a in self.annotations if kind in (None, a.kind)}
        return sorted(names)

    def labels_of(self, annotator: str) -> dict[str, str]:
        return {a.item_id: a.label for a in self.annotations if a.annotator == annotator}

    def by_item(self, annotator: str) -> dict[str, Annotation]:
        return {a.item_id: a for a in self.annotations if a.annotator == annotator}

    def human_labels(self) -> dict[str, dict[str, str]]:
        """item -> {annotator: label}, independent human labels only."""
        out: dict[str, dict[str, str]] = {}
        for a in self.annotations:
            if a.kind == "human" and a.independent:
                out.setdefault(a.item_id, {})[a.annotator] = a.label
        return out

    def reference(self, name: str = HUMANS, leave_out: str | None = None) -> dict[str, str]:
        """The reference label per item: a named annotator's, or the strict majority of the
        independent human labels (ties dropped), without `leave_out`'s own label."""
        if name != HUMANS:
            return self.labels_of(name)
        out = {}
        for item, labels in self.human_labels().items():
            votes = Counter(v for k, v in labels.items() if k != leave_out).most_common(2)
            if votes and (len(votes) == 1 or votes[0][1] > votes[1][1]):
                out[item] = votes[0][0]
        return out


def guideline_hashes(db: str | Path) -> list[tuple[str, str]]:
    """(hash, name) of every guideline with a label, newest first."""
    with transaction(db) as con:
        return con.execute(
            "SELECT g.guideline_hash, g.name FROM guidelines g WHERE EXISTS"
            " (SELECT 1 FROM decisions d WHERE d.guideline_hash = g.guideline_hash)"
            " OR EXISTS (SELECT 1 FROM reviews r WHERE r.guideline_hash = g.guideline_hash)"
            " ORDER BY g.created_at DESC"
        ).fetchall()


def load(db: str | Path, guideline_hash: str) -> GuidelineData:
    with transaction(db) as con:
        content, path = con.execute(
            "SELECT content, path FROM guidelines WHERE guideline_hash = $1", [guideline_hash]
        ).fetchall()[0]
        guideline = parse_guideline(content, path or guideline_hash)
        decisions = con.execute(DECISIONS, [guideline_hash]).fetchall()
        supports = item_supports(guideline, draft_votes(con, guideline.content_hash))
        reviews = con.execute(REVIEWS, [guideline_hash]).fetchall()
        cost, seconds, finals = con.execute(TOTALS, [guideline_hash]).fetchall()[0]
        trained = trained_items(con)
    # A student's labels on the items it was trained on say nothing about it: left out.
    annotations = [
        _decision(row, supports.get(row[0]))
        for row in decisions
        if row[0] not in trained.get(row[1], ())
    ]
    seen = 0
    for item_id, reviewer, label, blind, kind, confidence in reviews:
        signals = {} if confidence is None else {"confidence": confidence}
        annotations.append(
            Annotation(item_id, reviewer, kind, canonical(label), bool(blind), signals)
        )
        seen += kind == "human" and not blind
    return GuidelineData(
        guideline=guideline,
        annotations=annotations,
        seen_model_label=seen,
        llm_cost_usd=float(cost or 0),
        review_seconds=float(seconds or 0),
        final_labels=int(finals or 0),
    )


DECISIONS = """
SELECT d.item_id, d.model, CAST(d.label AS VARCHAR), d.agreement, d.confidence, d.n_samples,
       d.n_failed, json_array_length(d.disagreeing_models),
       (SELECT count(DISTINCT x.model) FROM drafts x
        WHERE x.item_id = d.item_id AND x.guideline_hash = d.guideline_hash)
FROM decisions d WHERE d.guideline_hash = $1 AND d.label IS NOT NULL
"""
REVIEWS = """
SELECT item_id, reviewer, CAST(label AS VARCHAR), blind, annotator_kind, confidence
FROM reviews
WHERE guideline_hash = $1 AND label IS NOT NULL AND action IN ('accept', 'correct', 'import')
"""
TOTALS = """
SELECT (SELECT sum(cost_usd) FROM drafts WHERE guideline_hash = $1),
       (SELECT sum(seconds_on_screen) FROM reviews WHERE guideline_hash = $1),
       (SELECT count(*) FROM final_labels WHERE guideline_hash = $1)
"""


def _decision(row: tuple[Any, ...], support: float | None) -> Annotation:
    item_id, model, label, agreement, confidence, n_samples, n_failed, disagreeing, models = row
    signals = {"agreement": agreement, "confidence": confidence, "support": support}
    if models and models > 1:
        signals["jury_agreement"] = 1 - disagreeing / models
    if n_samples:
        signals["failed_share"] = n_failed / n_samples
    clean = {k: float(v) for k, v in signals.items() if v is not None}
    return Annotation(item_id, model, "model", canonical(label), True, clean)


def canonical(label_json: str) -> str:
    return json.dumps(json.loads(label_json), ensure_ascii=False, sort_keys=True)
