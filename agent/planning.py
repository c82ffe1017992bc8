"""`labelagent plan`: how many items, calls and dollars a run would take, before spending any."""

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from labelagent import inputs
from labelagent.cascade import cascade_key, check_stages
from labelagent.guidelines import Guideline
from labelagent.item_checks import DEFAULT_MAX_ITEM_BYTES
from labelagent.store import cascades, log
from labelagent.store.address import postgres_url
from labelagent.store.db import read_only, transaction
from labelagent.tasks import build_messages, prompt_hash

COMPLETION_TOKENS_PER_SAMPLE = 60
NOTE = (
    "Adaptive sampling stops early on clear items, so real samples and cost are lower; "
    "cost counts each sample's prompt, which providers that honour n charge once."
)
PROMPT_SAMPLE_ITEMS = 200


@dataclass(frozen=True)
class ModelPlan:
    model: str
    max_samples: int
    max_cost_usd: float | None  # None: litellm has no price for the model
    stage: int = 0  # its cascade stage (0: --model and --jury)
    # From the earlier decisions of this cascade in the log: the share of items that reached the
    # stage times the model's mean samples per item there. None without such decisions.
    expected_cost_usd: float | None = None


@dataclass(frozen=True)
class Plan:
    """`labelagent plan`; `--json` prints its fields in this order."""

    input: str
    items: int
    already_decided: int
    to_label: int
    prompt_tokens_per_sample: int
    models: list[ModelPlan]
    max_cost_usd: float | None
    note: str = NOTE


def price_per_sample(model: str, prompt_tokens: float) -> float | None:
    """Dollars for one sample from litellm's local price table; None when the model is unknown."""
    if model.split(":", 1)[0] in ("local", "student"):
        return 0.0
    import litellm

    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            prompt_tokens=round(prompt_tokens),
            completion_tokens=COMPLETION_TOKENS_PER_SAMPLE,
        )
    except Exception:
        return None
    return prompt_cost + completion_cost


def batch_price_per_sample(model: str, prompt_tokens: float) -> float | None:
    """`price_per_sample` through the provider's batch interface (agent/prices.py)."""
    if model.split(":", 1)[0] in ("local", "student"):
        return 0.0
    from labelagent import prices

    return prices.batch_price(model, round(prompt_tokens), COMPLETION_TOKENS_PER_SAMPLE)


def batch_note(models: list[str]) -> str:
    from labelagent import prices

    halved = [m for m in models if prices.model_info(m) and not prices.has_batch_price(m)]
    note = " With --batch: at the batch price from litellm's table"
    if halved:
        note += f"; for {', '.join(halved)} it has none, so half the online price"
    return note + "."


def plan(
    input_path: str | Path,
    guideline: Guideline,
    db: str | Path,
    models: list[str],
    samples: int,
    id_field: inputs.IdField = inputs.DEFAULT_ID_FIELD,
    limit: int | None = None,
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    escalate_to: list[str] | None = None,
    batch: bool = False,
) -> Plan:
    """The worst case: every item reaches every stage and gets all `samples` from each model."""
    summary = inputs.scan(input_path, guideline.fields, id_field, max_item_bytes)
    stages = [[_resolved(db, guideline, m) for m in models], *([m] for m in escalate_to or [])]
    check_stages(stages)
    models = [m for stage in stages for m in stage]
    key = cascade_key(stages)
    total = summary.n_items if limit is None else min(limit, summary.n_items)
    decided, seen, prompt_chars = 0, 0, []
    exists = postgres_url(db) is not None or Path(db).exists()
    with read_only(db) if exists else nullcontext():
        for chunk in inputs.iter_items(summary.path, id_field.name, summary.id_source):
            chunk = chunk[: total - seen]
            seen += len(chunk)
            for item in chunk[: max(0, PROMPT_SAMPLE_ITEMS - len(prompt_chars))]:
                prompt_chars.append(sum(len(m["content"]) for m in build_messages(guideline, item)))
            if exists and chunk:
                done, _ = log.pending_work(
                    db,
                    [i.item_id for i in chunk],
                    guideline.content_hash,
                    prompt_hash(guideline),
                    key,
                    models,
                )
                decided += len(done)
            if seen >= total:
                break
    to_label = total - decided
    prompt_tokens = sum(prompt_chars) / max(1, len(prompt_chars)) / 4
    seen_per_item = _samples_seen(db, guideline, key, stages) if exists else {}
    per_model = []
    for index, stage in enumerate(stages):
        for model in stage:
            price = (batch_price_per_sample if batch else price_per_sample)(model, prompt_tokens)
            k = _samples(model, samples)
            cost = None if price is None else round(price * to_label * k, 4)
            seen = seen_per_item.get(model)
            expected = None if price is None or seen is None else round(price * to_label * seen, 4)
            per_model.append(ModelPlan(model, to_label * k, cost, index, expected))
    costs = [m.max_cost_usd for m in per_model]
    return Plan(
        input=str(summary.path),
        items=total,
        already_decided=decided,
        to_label=to_label,
        prompt_tokens_per_sample=round(prompt_tokens),
        models=per_model,
        max_cost_usd=None if None in costs else round(sum(costs), 4),
        note=NOTE + (batch_note(models) if batch else ""),
    )


def _samples_seen(
    db: str | Path, guideline: Guideline, key: str, stages: list[list[str]]
) -> dict[str, float]:
    """Model -> its samples per decided item of the cascade `key` so far (0 where the items did
    not reach its stage)."""
    with read_only(db), transaction(db) as con:
        decided = cascades.decision_count(con, guideline.content_hash, key)
        drawn = {
            d.model: d.drafts for d in cascades.draws_per_model(con, guideline.content_hash, key)
        }
    if not decided:
        return {}
    return {m: drawn.get(m, 0) / decided for stage in stages for m in stage}


def _resolved(db: str | Path, guideline: Guideline, model: str) -> str:
    """A student's full name (`student` is the newest one), as its decisions carry it."""
    if model != "student" and not model.startswith("student:"):
        return model
    from labelagent.student import student_backend

    return student_backend(db, guideline, model).name


def _samples(model: str, samples: int) -> int:
    """A student gives one deterministic sample per item."""
    return 1 if model.startswith("student:") else samples
