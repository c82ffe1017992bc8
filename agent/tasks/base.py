"""The `Task` protocol: everything the rest of labelagent asks of a task type. There is one object
per type, found by `labelagent.tasks.task_for(guideline)`; callers ask it and never branch on the
task's name."""

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from labelagent.guidelines import Guideline
from labelagent.records import Item
from labelagent.tasks.voting import vote_key

LabelKind = Literal["choice", "choices", "scores", "spans"]
Editor = Literal["buttons", "multiselect", "scores", "span_picker"]
LocalScoring = Literal["label", "dimensions"]
PICK_FIRST = "Pick a label first (number keys 1 to 9)."


@dataclass(frozen=True)
class ReviewForm:
    """How the review app shows an item of the task and takes the reviewer's own label."""

    editor: Editor  # label buttons, a multiselect (with the buttons), score inputs, span picker
    keys_pick_labels: bool  # number keys 1 to 9 pick (or, with a multiselect, toggle) a label
    missing_answer: str  # what to do when saving without an answer
    side_by_side: bool = False  # the last two fields are two responses, shown side by side


class Task(Protocol):
    """One task type: its front matter, prompt, answer, votes, comparisons and review form."""

    name: str  # the guideline's `task:`
    kind: LabelKind  # the label's form: one label, a set of labels, scores or spans
    review: ReviewForm
    default_labels: ClassVar[dict[str, str]]  # when the guideline names none
    default_fields: ClassVar[tuple[str, ...]]  # when the guideline names none
    min_labels: int  # under `labels:`
    has_support: bool  # one label out of a fixed set, so a sample's confidence is a probability
    local_scoring: LocalScoring | None  # what the embedded model scores; None: it cannot
    student_learns: bool  # a trained student (a classifier over the labels) can label it
    paired_responses: bool  # items are two responses; swapping them swaps the label

    @property
    def prompt_template(self) -> str: ...

    def front_matter(self, meta: dict, fields: list[str], path: str) -> dict[str, Any]:
        """Check the task's own front matter; the Guideline fields it adds."""
        ...

    def definitions(self, guideline: Guideline) -> dict[str, str]:
        """What the guideline defines, name -> definition: its labels, or its dimensions."""
        ...

    def annotation(self, guideline: Guideline) -> Any:
        """The type of the `label` field the model fills."""
        ...

    def normalize(self, guideline: Guideline, value: Any, item: Item | None) -> Any:
        """A messy label (a model's, a reviewer's) as the canonical label, or ValueError."""
        ...

    def read_imported(self, guideline: Guideline, value: Any, item: Item) -> Any:
        """An imported human label (decoded JSON) as the canonical label, or ValueError."""
        ...

    def canonical(self, guideline: Guideline, label: Any) -> Any:
        """A validated answer model's label as plain JSON values."""
        ...

    def aggregate(self, guideline: Guideline, labels: list[Any]) -> tuple[Any, float]:
        """The majority label of valid samples and the agreement (share agreeing)."""
        ...

    def labels_equal(self, a: Any, b: Any) -> bool: ...

    def max_tokens(self, item: Item) -> int:
        """The longest answer the task needs, set as every request's max_tokens."""
        ...


class BaseTask(Task):
    """What most task types share; each type implements the rest and overrides what differs."""

    name: str
    kind: LabelKind
    review: ReviewForm
    default_labels: ClassVar[dict[str, str]] = {}
    default_fields: ClassVar[tuple[str, ...]] = ("text",)
    min_labels = 2
    has_support = False
    local_scoring: LocalScoring | None = None
    student_learns = False
    paired_responses = False
    # Its JSON object with the label(s), a confidence and the one-sentence rationale the prompts
    # ask for (about 60 tokens for classification), with room to spare. A budget reserves a
    # request's worst case; an answer cut off there does not parse and goes to a person.
    answer_tokens = 600

    @property
    def prompt_template(self) -> str:
        return f"{self.name}.j2"

    def front_matter(self, meta: dict, fields: list[str], path: str) -> dict[str, Any]:
        return {}

    def definitions(self, guideline: Guideline) -> dict[str, str]:
        return guideline.labels

    def read_imported(self, guideline: Guideline, value: Any, item: Item) -> Any:
        return self.normalize(guideline, value, item)

    def labels_equal(self, a: Any, b: Any) -> bool:
        return vote_key(a) == vote_key(b)

    def max_tokens(self, item: Item) -> int:
        return self.answer_tokens
