"""A scripted backend for unit tests: `enqueue` what it answers, read `history` for what it got."""

from collections import deque
from typing import Any

from labelagent.records import Sample, SampleRequest


class FakeBackend:
    """Answers with enqueued labels (an answer 'error: why' is a failed sample); when the queue is
    empty, with `by_item[item_id]` (a tuple there is that item's answers, one per sample, in
    order), else `default`."""

    def __init__(
        self,
        name: str = "fake/model",
        default: Any = None,
        supports_n: bool = True,
        by_item: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.default = default
        self.by_item = by_item or {}
        self._supports_n = supports_n
        self.queue: deque[Any] = deque()
        self.history: list[SampleRequest] = []
        self._drawn: dict[str, int] = {}

    @property
    def supports_n(self) -> bool:
        return self._supports_n

    @property
    def priced(self) -> bool:
        return True

    def enqueue(self, *answers: Any) -> None:
        self.queue.extend(answers)

    async def sample(self, request: SampleRequest) -> list[Sample]:
        self.history.append(request)
        return [self._one(request.item.item_id) for _ in range(request.n)]

    def _one(self, item_id: str) -> Sample:
        answer = self.queue.popleft() if self.queue else self.by_item.get(item_id, self.default)
        if isinstance(answer, tuple):
            index = self._drawn.get(item_id, 0)
            self._drawn[item_id] = index + 1
            answer = answer[index % len(answer)]
        if isinstance(answer, str) and answer.startswith("error:"):
            return Sample(model=self.name, error=answer.removeprefix("error:").strip())
        return Sample(model=self.name, label=answer, confidence=0.9, rationale="scripted")

    @property
    def samples_drawn(self) -> int:
        return sum(r.n for r in self.history)
