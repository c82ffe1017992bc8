"""A cascade: stages of models tried in order, the cheapest first. An item a stage is sure of
(its verdict passes the stage's thresholds) is decided there; the others go on to the next
stage, and after the last one to people (`labelagent label --model A --escalate-to B ...`).

A stage is a main model with its optional jury. A cascade is named by its stages' models:
stages joined by ">", a stage's models by "+" ("mistral>gpt-3.5+claude>gpt-4"): one string that
fits the log's `model` columns, where its decisions and its calibration rule are kept, and that
SQL can filter on. A run of one stage is named by its main model, as before cascades.

Audit items, and a `calibration_share` of the other items, go through every stage whatever their
scores: they are the random sample that calibrating the whole cascade rests on.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelagent.calibration.rule import Thresholds, latest_rule, thresholds_for
from labelagent.errors import ConfigError
from labelagent.records import Backend, Verdict
from labelagent.store.db import read_only

STAGES = ">"
MODELS = "+"


@dataclass
class Stage:
    backends: list[Backend]
    thresholds: Thresholds

    @property
    def models(self) -> list[str]:
        return [b.name for b in self.backends]


def stage_score(verdict: Verdict) -> float | None:
    """What a stage's threshold gates: support where it applies, else agreement (None: the
    stage cannot accept the item, a failed sample)."""
    if verdict.label is None or verdict.n_failed:
        return None
    return verdict.support if verdict.support is not None else verdict.agreement


def tried_stage(
    models: list[str], verdict: Verdict, accepted: bool, reasons: list[str]
) -> dict[str, Any]:
    """A stage's entry in `decisions.stages_tried`: its models, where the item went ("auto",
    "next", or "escalated" after the last stage), why, and the stage's label and score (what
    the review queue shows of each stage)."""
    return {
        "models": models,
        "route": "auto" if accepted else "next",
        "reasons": reasons,
        "label": verdict.label,
        "score": stage_score(verdict),
    }


def cascade_key(stages: Sequence[Sequence[str]]) -> str:
    """The name of a cascade of these stages' models (see the module's docstring)."""
    if len(stages) == 1:
        return stages[0][0]
    return STAGES.join(MODELS.join(models) for models in stages)


def stage_models(key: str) -> list[list[str]]:
    """The stages' models of a cascade named `key` (one stage: the model alone)."""
    if STAGES not in key:
        return [[key]]
    return [stage.split(MODELS) for stage in key.split(STAGES)]


def is_cascade(key: str) -> bool:
    return STAGES in key


def check_stages(stages: Sequence[Sequence[str]]) -> None:
    """Refuse a model named twice, or a name the cascade key cannot carry, before any call."""
    seen: set[str] = set()
    for models in stages:
        for model in models:
            if STAGES in model or MODELS in model:
                raise ConfigError(
                    f"model {model!r}: a model name in a cascade cannot contain "
                    f"{STAGES!r} or {MODELS!r}"
                )
            if model in seen:
                raise ConfigError(
                    f"model {model!r} is named twice (--model, --jury, --escalate-to): each model"
                    " can be one stage or one jury member only",
                    hint="Name every model once.",
                )
            seen.add(model)


def stage_thresholds(
    db: str | Path,
    guideline_hash: str,
    stages: Sequence[Sequence[str]],
    min_agreement: float | None = None,
    min_confidence: float | None = None,
    audit_share: float | None = None,
) -> list[Thresholds]:
    """Each stage's thresholds: flags, else the latest rule calibrated for this very cascade,
    else the defaults. One stage: the single-model rule (`thresholds_for`)."""
    flags = {
        "min_agreement": min_agreement,
        "min_confidence": min_confidence,
        "audit_share": audit_share,
    }
    if len(stages) == 1:
        return [thresholds_for(db, guideline_hash, stages[0][0], **flags)]
    rule = None
    if Path(db).exists():
        with read_only(db, any_version=True):
            rule = latest_rule(db, guideline_hash, cascade_key(stages))
    if rule is None or len(rule.get("stages", [])) != len(stages):
        return [Thresholds().merged(**flags) for _ in stages]
    return [
        stage_rule_thresholds(rule, stage["threshold"]).merged(**flags) for stage in rule["stages"]
    ]


def stage_rule_thresholds(rule: dict, threshold: float | None) -> Thresholds:
    """A stage of a calibrated cascade: its score alone gates; None accepts nothing."""
    source = f"calibration {rule['calibration_id']}"
    gates = {"min_agreement": 0.0, "min_confidence": 0.0, "min_support": 0.0}
    if threshold is None:
        return Thresholds(**gates, jury_disagreement=False, auto_accept=False, source=source)
    gate = "min_support" if rule["signal"] == "support" else "min_agreement"
    return Thresholds(**(gates | {gate: threshold}), jury_disagreement=False, source=source)
