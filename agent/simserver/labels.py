"""labelagent's answer fields: `label` drawn against gold, `confidence`, `rationale`.

How a wrong answer looks, per label shape (each is "correct" with probability `accuracy`):

- choice (string enum): the gold label, else a uniformly random other enum value.
- multi (array of string enum): the exact gold set, else the gold set with one uniformly
  chosen label's membership flipped (so `accuracy` is the exact-set accuracy).
- rating (object of bounded integers, one per dimension) and scalar (one bounded integer):
  each value is gold with probability `accuracy`, else one step up or down (clipped).
- spans (array of objects with `text` and `label`): each gold span is kept with probability
  `accuracy`; the answer is correct when all are kept.
- text (plain string or no schema): the gold label, else another label seen in the gold table.

Gold rows with `probs` for the requested model replace `accuracy` for choice/text labels: the
label is sampled from that distribution and reported with its probability as confidence.
"""

import random
from dataclasses import dataclass, field
from typing import Any

from labelagent.simserver.schema_fill import (
    Schema,
    enum_options,
    fill,
    fill_object,
    number_bounds,
    resolve,
    schema_type,
)

ANSWER_FIELDS = ("label", "confidence", "rationale")


@dataclass(frozen=True)
class LabelSpec:
    """The shape of the `label` field, worked out once per schema."""

    kind: str
    schema: Schema = field(default_factory=dict)
    options: tuple[Any, ...] = ()
    min_items: int = 0
    dims: tuple[tuple[str, int, int], ...] = ()
    span_item: Schema = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerPlan:
    """A resolved answer schema: where labelagent's fields are and what shape the label has."""

    root: Schema
    body: Schema
    label: LabelSpec | None
    confidence: Schema | None
    rationale: Schema | None


TEXT_LABEL = LabelSpec(kind="text")


def _rating_dims(schema: Schema, root: Schema) -> tuple[tuple[str, int, int], ...] | None:
    dims = []
    for name, prop in schema.get("properties", {}).items():
        resolved = resolve(prop, root)
        if schema_type(resolved) != "integer":
            return None
        low, high = number_bounds(resolved, 1, 5)
        dims.append((name, int(low), int(high)))
    return tuple(dims) or None


def _array_label_spec(schema: Schema, root: Schema) -> LabelSpec:
    items = resolve(schema.get("items", {}), root)
    options = enum_options(items)
    if options is not None:
        return LabelSpec("multi", schema, tuple(options), min_items=schema.get("minItems", 0))
    properties = items.get("properties", {})
    if "text" in properties and "label" in properties:
        span_options = enum_options(resolve(properties["label"], root)) or []
        return LabelSpec("spans", schema, tuple(span_options), span_item=items)
    return LabelSpec("other", schema)


def label_spec(schema: Schema, root: Schema) -> LabelSpec:
    """Classify the `label` field's schema into one of the shapes in the module docstring."""
    schema = resolve(schema, root)
    options = enum_options(schema)
    kind = schema_type(schema)
    if options is not None:
        return LabelSpec("choice", schema, tuple(options))
    if kind == "array":
        return _array_label_spec(schema, root)
    if kind == "object":
        dims = _rating_dims(schema, root)
        return LabelSpec("rating", schema, dims=dims) if dims else LabelSpec("other", schema)
    if kind == "integer":
        low, high = number_bounds(schema, 1, 5)
        return LabelSpec("scalar", schema, dims=(("", int(low), int(high)),))
    if kind == "string":
        return LabelSpec("text", schema)
    return LabelSpec("other", schema)


def compile_plan(schema: Schema) -> AnswerPlan:
    """Work out once what a schema asks for, so each request only draws values."""
    body = resolve(schema, schema)
    properties = body.get("properties", {})

    def resolved(name: str) -> Schema | None:
        return resolve(properties[name], schema) if name in properties else None

    label = label_spec(properties["label"], schema) if "label" in properties else None
    return AnswerPlan(schema, body, label, resolved("confidence"), resolved("rationale"))


@dataclass
class Draw:
    """One drawn label: whether it matches gold (None: unknown) and its probability if sampled."""

    label: Any
    correct: bool | None
    probability: float | None = None


def _model_probs(gold: dict, model: str) -> dict[str, float] | None:
    """The probs for `model`, also matching "openai/sim" against "sim" and vice versa."""
    probs = gold.get("probs") or {}
    if model in probs:
        return probs[model]
    short = model.rsplit("/", 1)[-1]
    return next((p for name, p in probs.items() if name.rsplit("/", 1)[-1] == short), None)


def _sample_probs(probs: dict[str, float], gold_label: Any, rng: random.Random) -> Draw:
    labels = list(probs)
    label = rng.choices(labels, weights=[probs[name] for name in labels])[0]
    return Draw(label, label == gold_label, float(probs[label]))


def _draw_choice(options: tuple[Any, ...], gold: Any, accuracy: float, rng: random.Random) -> Draw:
    others = [option for option in options if option != gold]
    if not others or rng.random() < accuracy:
        return Draw(gold, True)
    return Draw(rng.choice(others), False)


def _draw_multi(spec: LabelSpec, gold: Any, accuracy: float, rng: random.Random) -> Draw:
    golds = [gold] if isinstance(gold, str) else list(gold or [])
    chosen = set(golds)
    if rng.random() >= accuracy and spec.options:
        flip = rng.choice(spec.options)
        if flip in chosen and len(chosen) <= spec.min_items:
            absent = [option for option in spec.options if option not in chosen]
            flip = rng.choice(absent) if absent else None
        if flip is not None:
            chosen ^= {flip}
    ordered = [option for option in spec.options if option in chosen]
    ordered += sorted(str(extra) for extra in chosen - set(spec.options))
    return Draw(ordered, set(ordered) == set(golds))


def _step(value: int, low: int, high: int, rng: random.Random) -> int:
    up = rng.random() < 0.5
    moved = value + 1 if up else value - 1
    if not low <= moved <= high:
        moved = value - 1 if up else value + 1
    return max(low, min(high, moved))


def _draw_rating(spec: LabelSpec, gold: Any, accuracy: float, rng: random.Random) -> Draw:
    golds = gold if isinstance(gold, dict) else {"": gold}
    answer: dict[str, int] = {}
    for name, low, high in spec.dims:
        target = golds.get(name)
        if not isinstance(target, int):
            answer[name] = rng.randint(low, high)
        elif rng.random() < accuracy:
            answer[name] = target
        else:
            answer[name] = _step(target, low, high, rng)
    correct = all(answer[name] == golds.get(name) for name, _, _ in spec.dims)
    return Draw(answer if spec.kind == "rating" else answer[""], correct)


def _span_answer(spec: LabelSpec, span: dict, root: Schema, rng: random.Random) -> dict:
    properties = spec.span_item.get("properties", {})
    wanted = dict.fromkeys(["text", "label", *spec.span_item.get("required", [])])
    return {
        name: span[name] if name in span else fill(properties.get(name, {}), root, rng)
        for name in wanted
    }


def _draw_spans(
    spec: LabelSpec, gold: Any, accuracy: float, root: Schema, rng: random.Random
) -> Draw:
    spans = [span for span in gold or [] if isinstance(span, dict)]
    kept = [span for span in spans if rng.random() < accuracy]
    return Draw([_span_answer(spec, span, root, rng) for span in kept], len(kept) == len(spans))


def draw_label(
    spec: LabelSpec,
    gold: dict | None,
    model: str,
    accuracy: float,
    root: Schema,
    rng: random.Random,
    label_pool: tuple[str, ...] = (),
) -> Draw:
    """The label one simulated annotator gives for an item with this gold row."""
    if gold is None or "label" not in gold:
        if spec.kind == "text":
            return Draw(rng.choice(label_pool) if label_pool else "unknown", None)
        return Draw(fill(spec.schema, root, rng), None)
    target = gold["label"]
    probs = _model_probs(gold, model) if spec.kind in ("choice", "text") else None
    if probs:
        return _sample_probs(probs, target, rng)
    if spec.kind == "choice":
        return _draw_choice(spec.options, target, accuracy, rng)
    if spec.kind == "text":
        return _draw_choice(label_pool, target, accuracy, rng)
    if spec.kind == "multi":
        return _draw_multi(spec, target, accuracy, rng)
    if spec.kind in ("rating", "scalar"):
        return _draw_rating(spec, target, accuracy, rng)
    if spec.kind == "spans":
        return _draw_spans(spec, target, accuracy, root, rng)
    return Draw(fill(spec.schema, root, rng), None)


def confidence_for(draw: Draw, schema: Schema | None, rng: random.Random) -> float:
    """Correct answers are confident (0.7-1.0), wrong ones less so (0.3-0.8)."""
    if draw.probability is not None:
        value = draw.probability
    elif draw.correct is None:
        value = rng.uniform(0.3, 1.0)
    else:
        value = rng.uniform(0.7, 1.0) if draw.correct else rng.uniform(0.3, 0.8)
    low, high = number_bounds(schema or {}, 0.0, 1.0)
    if high > 1:
        value *= high
    value = max(low, min(high, round(value, 2)))
    return int(value) if schema_type(schema or {}) == "integer" else value


def rationale_for(label: Any, schema: Schema | None) -> str:
    text = f"The item reads as {label}." if isinstance(label, str) else "Judged by the guideline."
    return text[: (schema or {}).get("maxLength", len(text))]


def draw_answer(
    plan: AnswerPlan,
    gold: dict | None,
    model: str,
    accuracy: float,
    rng: random.Random,
    label_pool: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A full answer object for `plan`: labelagent's fields plus every other required one."""
    if plan.label is None:
        return fill_object(plan.body, plan.root, rng)
    properties = plan.body.get("properties", {})
    answer: dict[str, Any] = {
        name: fill(properties.get(name, {}), plan.root, rng, 1)
        for name in plan.body.get("required", [])
        if name not in ANSWER_FIELDS
    }
    draw = draw_label(plan.label, gold, model, accuracy, plan.root, rng, label_pool)
    answer["label"] = draw.label
    if plan.confidence is not None:
        answer["confidence"] = confidence_for(draw, plan.confidence, rng)
    if plan.rationale is not None:
        answer["rationale"] = rationale_for(draw.label, plan.rationale)
    return answer
