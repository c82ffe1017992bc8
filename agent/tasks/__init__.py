"""Task types. Each is a pair of pure functions (build the prompt, parse the answer) plus how its
labels are voted on. The answer model is what the LLM is asked to fill, and its validator turns a
messy answer into the task's canonical label or raises, so instructor can re-ask."""

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError, ValidationInfo, create_model, model_validator

from agent.errors import ParseError
from agent.guidelines import Guideline
from agent.prompts import render, templates_hash
from agent.records import Answer, Item
from agent.tasks import classification, multilabel, rating, spans
from agent.tasks.parsing import coerce_confidence, extract_json

TASK_MODULES = {
    "classification": classification,
    "preference": classification,
    "multilabel": multilabel,
    "rating": rating,
    "spans": spans,
}


def prompt_names(guideline: Guideline) -> tuple[str, ...]:
    """Every template a run of this task can use (the embedded model scores with its own)."""
    return (f"{guideline.task}.j2", "_guideline.j2", "item.j2", "local_score.j2")


def prompt_hash(guideline: Guideline) -> str:
    return templates_hash(*prompt_names(guideline))


def item_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1)


def item_data(guideline: Guideline, item: Item) -> str:
    """The item as one JSON object, `item_id` and the guideline's `fields`. Its text is inside
    JSON strings, so it cannot end the object; `<` and `>` are escaped, so it cannot spell a tag
    or a chat template's role marker either (e.g. `<|im_start|>system`)."""
    fields = {name: item.fields.get(name, "") for name in guideline.fields}
    data = json.dumps({"item_id": item.item_id, "fields": fields}, ensure_ascii=False, default=str)
    return data.replace("<", "\\u003c").replace(">", "\\u003e")


def build_messages(guideline: Guideline, item: Item) -> list[dict[str, str]]:
    """The instructions, then the item alone in a user message of its own, as data."""
    return [
        {"role": "system", "content": system_prompt(guideline)},
        {"role": "user", "content": item_data(guideline, item)},
    ]


_SYSTEM_PROMPTS: dict[str, str] = {}


def system_prompt(guideline: Guideline) -> str:
    """The instructions, rendered once per guideline (they do not depend on the item)."""
    key = guideline.content_hash
    if key not in _SYSTEM_PROMPTS:
        _SYSTEM_PROMPTS[key] = render(f"{guideline.task}.j2", guideline=guideline)
    return _SYSTEM_PROMPTS[key]


class AnswerBase(BaseModel):
    """Shared fields and the lenient pre-validation every task's answer model gets."""

    guideline: ClassVar[Guideline]

    rationale: str = ""
    confidence: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            data = extract_json(data)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object with label, rationale and confidence")
        data = {str(k).strip().lower(): v for k, v in data.items()}
        if "label" not in data:
            for alias in ("labels", "answer", "scores", "spans", "choice"):
                if alias in data:
                    data["label"] = data.pop(alias)
                    break
            else:
                raise ValueError("the answer has no 'label'")
        item = (info.context or {}).get("item")
        named = data.pop("item_id", None)
        if item is not None and named is not None and str(named) != item.item_id:
            raise ValueError(f"the answer is about item {named!r}, not this item {item.item_id!r}")
        data["label"] = TASK_MODULES[cls.guideline.task].normalize(
            cls.guideline, data["label"], item
        )
        data["confidence"] = coerce_confidence(data.get("confidence"))
        rationale = data.get("rationale")
        data["rationale"] = "" if rationale is None else str(rationale)
        return data


_ANSWER_MODELS: dict[str, type[AnswerBase]] = {}


def answer_model(guideline: Guideline) -> type[AnswerBase]:
    """The pydantic model the LLM fills for this guideline (one class per guideline version)."""
    key = guideline.content_hash
    if key not in _ANSWER_MODELS:
        annotation = TASK_MODULES[guideline.task].annotation(guideline)
        model = create_model("Answer", __base__=AnswerBase, label=(annotation, ...))
        model.guideline = guideline
        _ANSWER_MODELS[key] = model
    return _ANSWER_MODELS[key]


def to_answer(guideline: Guideline, validated: AnswerBase) -> Answer:
    label = TASK_MODULES[guideline.task].canonical(guideline, validated.label)
    return Answer(label=label, rationale=validated.rationale, confidence=validated.confidence)


def parse_answer(guideline: Guideline, item: Item, raw: str | dict) -> Answer:
    """A model's raw answer (text or decoded JSON) as the task's canonical label, or ParseError."""
    try:
        validated = answer_model(guideline).model_validate(raw, context={"item": item})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ParseError(f"{where + ': ' if where else ''}{message}") from None
    except ValueError as e:
        raise ParseError(str(e)) from None
    return to_answer(guideline, validated)


def aggregate(guideline: Guideline, labels: list[Any]) -> tuple[Any, float]:
    """The majority label of valid samples and the agreement (share of samples agreeing)."""
    return TASK_MODULES[guideline.task].aggregate(guideline, labels)
