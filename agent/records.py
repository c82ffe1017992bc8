"""The plain objects that flow between reading, sampling, aggregating, routing and storing."""

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from labelagent.budget import Budget
from labelagent.guidelines import Guideline

ASKED_IN_BATCH = "batch"  # a Sample's `unanswered`: its request goes in the next batch


class Item(BaseModel):
    item_id: str
    fields: dict[str, Any]
    line: int = 0  # where the item starts in its input file (1-based; row number for Parquet)


class Example(BaseModel):
    """A trusted label (a person's) shown in the prompt as a worked example for another item."""

    item: Item
    label: Any


class Answer(BaseModel):
    """One parsed model answer: the label in the task's canonical form."""

    label: Any
    rationale: str = ""
    confidence: float | None = None


class Sample(BaseModel):
    """One drawn sample, successful (label set) or failed (error set). Stored as a draft row."""

    model: str
    sample_index: int = 0
    label: Any = None
    confidence: float | None = None
    rationale: str | None = None
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    error: str | None = None
    # Set when no answer was drawn: "provider" (transport or provider failure after every retry),
    # "budget" (the request could not be afforded) or ASKED_IN_BATCH (`label --batch`: the request
    # goes in the next batch). Such a sample is never stored nor part of a decision; its item
    # stays undecided so that a later run (or round) tries it again.
    unanswered: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SampleRequest(BaseModel):
    """What a backend needs to draw `n` samples for one item. A backend that pays per request
    reserves each request's worst-case cost from `budget` before sending it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    guideline: Guideline
    item: Item
    messages: list[dict[str, str]]
    n: int = 1
    seed: int = 0
    temperature: float = 0.7
    budget: Budget | None = None
    examples: list[Example] = Field(default_factory=list)  # already in `messages`


class Backend(Protocol):
    """Something that drafts labels: litellm (any provider) or the embedded local model."""

    name: str  # stored in drafts.model

    @property
    def supports_n(self) -> bool:
        """True when one request can return several samples (the prompt is paid once)."""
        ...

    @property
    def priced(self) -> bool:
        """True when what its requests cost is known (a --budget needs it)."""
        ...

    async def sample(self, request: SampleRequest) -> list[Sample]:
        """Draw `request.n` samples. Failures come back as samples with `error` set; never raise
        for a per-item problem."""
        ...


class Verdict(BaseModel):
    label: Any = None
    agreement: float | None = None
    confidence: float | None = None
    support: float | None = None  # see labelagent.consistency.support
    n_samples: int = 0
    n_failed: int = 0
    votes: dict[str, int] = Field(default_factory=dict)
    per_model: dict[str, Any] = Field(default_factory=dict)
    disagreeing_models: list[str] = Field(default_factory=list)


class Decision(BaseModel):
    item_id: str
    guideline_hash: str
    run_id: str
    model: str
    prompt_hash: str
    verdict: Verdict
    route: str
    reasons: list[str]
    rule: dict[str, Any]
    stage: int | None = None  # the cascade stage whose verdict this is
    stages_tried: list[dict[str, Any]] | None = None  # per stage tried: models, route, reasons
