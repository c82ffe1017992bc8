"""Task types: one object per type (the `Task` protocol in base.py), found by `task_for`. This
module builds the prompt and parses the answer for any of them. The answer model is what the LLM
is asked to fill, and its validator turns a messy answer into the task's canonical label or
raises, so instructor can re-ask."""

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError, ValidationInfo, create_model, model_validator

from labelagent.errors import ParseError
from labelagent.guidelines import Guideline
from labelagent.prompts import render, templates_hash
from labelagent.records import Answer, Example, Item
from labelagent.tasks.base import Task
from labelagent.tasks.classification import ChoiceTask, PreferenceTask
from labelagent.tasks.multilabel import MultilabelTask
from labelagent.tasks.parsing import coerce_confidence, extract_json
from labelagent.tasks.rating import RatingTask
from labelagent.tasks.spans import SpansTask

_BY_NAME: dict[str, Task] = {
    task.name: task
    for task in (ChoiceTask(), MultilabelTask(), PreferenceTask(), RatingTask(), SpansTask())
}


def task_for(guideline: Guideline) -> Task:
    return _BY_NAME[guideline.task]


def task_named(name: str) -> Task:
    """The task of a name kept without its guideline (a front matter being read, a student)."""
    return _BY_NAME[name]


def all_tasks() -> tuple[Task, ...]:
    return tuple(_BY_NAME.values())


def prompt_names(guideline: Guideline) -> tuple[str, ...]:
    """Every template a run of this task can use (the embedded model scores with its own)."""
    task = task_for(guideline).prompt_template
    return (task, "_guideline.j2", "_examples.j2", "item.j2", "local_score.j2")


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
    return _escaped({"item_id": item.item_id, "fields": fields})


def _escaped(value: Any) -> str:
    data = json.dumps(value, ensure_ascii=False, default=str)
    return data.replace("<", "\\u003c").replace(">", "\\u003e")


def build_messages(
    guideline: Guideline, item: Item, examples: Sequence[Example] = ()
) -> list[dict[str, str]]:
    """The instructions, then any worked examples (as data like the item), then the item alone in
    a user message of its own, as data. Laid out for providers' prompt caches: the system message
    begins with `system_prompt`, byte-identical for every item of the guideline, and what varies
    per item comes after it."""
    system = system_prompt(guideline)
    if examples:
        system = f"{system}\n\n{_examples(guideline, examples)}"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": item_data(guideline, item)},
    ]


_SYSTEM_PROMPTS: dict[str, str] = {}


def system_prompt(guideline: Guideline) -> str:
    """The fixed instructions (the guideline and how to answer), rendered once per guideline:
    they do not depend on the item."""
    key = guideline.content_hash
    if key not in _SYSTEM_PROMPTS:
        _SYSTEM_PROMPTS[key] = render(task_for(guideline).prompt_template, guideline=guideline)
    return _SYSTEM_PROMPTS[key]


def _examples(guideline: Guideline, examples: Sequence[Example]) -> str:
    shown = [{"item": item_data(guideline, e.item), "label": _escaped(e.label)} for e in examples]
    return render("_examples.j2", examples=shown)


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
        data["label"] = task_for(cls.guideline).normalize(cls.guideline, data["label"], item)
        data["confidence"] = coerce_confidence(data.get("confidence"))
        rationale = data.get("rationale")
        data["rationale"] = "" if rationale is None else str(rationale)
        return data


_ANSWER_MODELS: dict[str, type[AnswerBase]] = {}


def answer_model(guideline: Guideline) -> type[AnswerBase]:
    """The pydantic model the LLM fills for this guideline (one class per guideline version)."""
    key = guideline.content_hash
    if key not in _ANSWER_MODELS:
        annotation = task_for(guideline).annotation(guideline)
        model = create_model("Answer", __base__=AnswerBase, label=(annotation, ...))
        model.guideline = guideline
        _ANSWER_MODELS[key] = model
    return _ANSWER_MODELS[key]


def to_answer(guideline: Guideline, validated: AnswerBase) -> Answer:
    label = task_for(guideline).canonical(guideline, validated.label)
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
    return task_for(guideline).aggregate(guideline, labels)
