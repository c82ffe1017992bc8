"""`labelagent label --batch`: the same labeling run, its requests sent through the provider's
batch interface at the batch price (agent/transports/batches.py).

The run goes in rounds. Each round replays every pending item through the online path
(`Labeler._label`: its stages, its stopping rule, its routing) with each model replaced by a
`Collector`, which answers a request from the last batch's output or notes it for the next
batch. Round 1 asks for every pending item's first samples; later rounds only for items whose
sampling has not settled, or that go on to the next stage of a cascade. An item is decided in
the round where it needs nothing more.

Before anything is awaited, the log holds the submission (its input file id and what every line
asks for: item, model, seed, first sample index, n), then its batch id (agent/store/batches.py).
A run that was killed is resumed by the next one, which polls the same batch (or, when the kill
came between creating the batch and logging its id, finds the batch made from that input file)
and never creates it twice. A batch that failed or expired is not read again: its unanswered
lines are asked in the next round's batch.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from labelagent import prices
from labelagent.cascade import Stage
from labelagent.consistency import RoundCosts
from labelagent.errors import ConfigError, ProviderUnreachable
from labelagent.pipeline import Labeler
from labelagent.records import ASKED_IN_BATCH, Backend, Item, Sample, SampleRequest
from labelagent.store import batches as logged
from labelagent.store import log
from labelagent.store.writer import ResultWriter, with_retries
from labelagent.transports import provider_of
from labelagent.transports.batches import (
    ENDPOINT,
    LITELLM_BATCH_PROVIDERS,
    OPENAI_BATCH_PROVIDERS,
    BatchState,
)

MAX_LINES = 50_000  # per input file (OpenAI's limit)
FAILED_ROUNDS = 3  # rounds in a row whose batches answered nothing before the run stops


def check_batch(backends: list[Backend]) -> None:
    """Refuse --batch, before any call, for a model whose provider has no batch interface that
    labelagent can drive."""
    for backend in backends:
        batches = getattr(backend, "batches", None)
        if batches is not None and batches() is not None:
            continue
        provider = provider_of(backend.name)
        if batches is None:
            why = "runs on this machine, with no batch interface and no price to halve"
        elif provider == "anthropic":
            why = (
                "is an Anthropic model: litellm does not implement Anthropic batch creation "
                "(it only retrieves Anthropic batches)"
            )
        elif provider == "bedrock":
            why = (
                "is a Bedrock model: litellm cannot list Bedrock batches, so a killed run could "
                "not find the batch it created and might pay for it twice"
            )
        else:
            why = f"is served by {provider}, which has no batch interface labelagent can use"
        supported = ", ".join(dict.fromkeys((*OPENAI_BATCH_PROVIDERS, *LITELLM_BATCH_PROVIDERS)))
        raise ConfigError(
            f"--batch: {backend.name} {why}; nothing was sent",
            hint=f"Leave out --batch to label online at the full price; --batch works with "
            f"{supported} (and OpenAI-compatible servers given with --api-base).",
        )


def price_note(backend: Backend) -> str:
    """Which batch price a model's drafts are charged, for the run's log and the console."""
    if not getattr(backend, "priced", False):
        return f"{backend.name}: no price in litellm's table (drafts cost 0)"
    if prices.has_batch_price(backend.name):
        return f"{backend.name}: litellm's batch price"
    return f"{backend.name}: half the online price (litellm's table has no batch price for it)"


class Collector:
    """A model in batch mode: answers a request from a finished batch's line for it, else
    notes the request for the next batch and leaves it unanswered (`ASKED_IN_BATCH`)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.name
        self.lines: dict[tuple[str, int], dict] = {}  # (item id, seed) -> the batch's line
        self.asked: list[SampleRequest] = []

    @property
    def supports_n(self) -> bool:
        return True

    @property
    def priced(self) -> bool:
        return self.backend.priced

    def round_costs(self) -> RoundCosts | None:
        """The model's prompt and sample dollars from the batches answered so far, so later
        rounds are sized in dollars as online (round 1 has none: `next_batch`)."""
        return self.backend.round_costs()

    async def sample(self, request: SampleRequest) -> list[Sample]:
        line = self.lines.pop((request.item.item_id, request.seed), None)
        if line is not None:
            return self.backend.batch_samples(request, line)
        self.asked.append(request)
        return [
            Sample(model=self.name, error="asked in a batch", unanswered=ASKED_IN_BATCH)
            for _ in range(request.n)
        ]

    async def aclose(self) -> None:
        await self.backend.aclose()


@dataclass
class Submitted:
    """A submission of this run, or of a killed one, with its model's collector."""

    submission: logged.Submission
    collector: Collector
    state: BatchState | None = None
    answered: int = 0
    notes: list[str] = field(default_factory=list)
    consumed: bool = False


class BatchLabeler(Labeler):
    """A `Labeler` whose requests go through provider batches, in rounds (module docstring)."""

    def __init__(
        self,
        *args: Any,
        poll_seconds: float = 30.0,
        on_notice: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # A round's answers are all in when its items are replayed: items in a row without an
        # answer say nothing about an outage there; rounds that answer nothing do (FAILED_ROUNDS).
        self.settings = self.settings.model_copy(update={"breaker_items": 2**31})
        if self.settings.budget_usd is not None:
            raise ConfigError(
                "--budget cannot be combined with --batch yet: a batch's cost is known only "
                "when it is done",
                hint="Leave out --budget (`labelagent plan` shows the most it can cost), or "
                "--batch.",
            )
        check_batch(self.backends)
        self.poll_seconds = poll_seconds
        self.notice = on_notice or (lambda text: None)
        self.collectors = {b.name: Collector(b) for b in self.backends}
        self.stages = [
            Stage([self.collectors[b.name] for b in stage.backends], stage.thresholds)
            for stage in self.stages
        ]
        self.backends = list(self.collectors.values())

    def _run_record(self, run_id: str, summary: Any) -> dict:
        record = super()._run_record(run_id, summary)
        notes = [price_note(c.backend) for c in self.collectors.values()]
        record["settings"]["batch"] = {"poll_seconds": self.poll_seconds, "prices": notes}
        for note in notes:
            self.notice(f"batch price: {note}")
        return record

    async def _label_all(self, pending: AsyncIterator, writer: ResultWriter, run_id: str) -> None:
        items = {item.item_id: (item, stored) async for item, stored in pending}
        earlier = await asyncio.to_thread(
            logged.open_submissions,
            self.db,
            self.guideline.content_hash,
            self.prompt_hash,
            self.model,
        )
        if earlier:
            self.notice(
                f"open batches of an earlier run: {len(earlier)}; polling them, not sending "
                "them again"
            )
        submitted = [Submitted(s, self.collectors[s.model]) for s in earlier]
        await self._finish(submitted)
        failed_rounds, round_number = 0, max((s.round for s in earlier), default=0)
        replay = False
        while items:
            round_number += 1
            reused = self.progress.stored_samples_reused
            items = await self._round(items, writer, run_id)
            if replay:  # drafts of this run's rounds are not reused from earlier runs
                self.progress.stored_samples_reused = reused
            replay = True
            await self._consume(submitted)
            asked = [(c, r) for c in self.collectors.values() for r in c.asked]
            for collector in self.collectors.values():
                collector.asked = []
            if not asked:
                break
            submitted = await self._submit(asked, run_id, round_number)
            await self._finish(submitted)
            failed_rounds = 0 if any(s.answered for s in submitted) else failed_rounds + 1
            if failed_rounds >= FAILED_ROUNDS:
                reasons = "; ".join(note for s in submitted for note in s.notes)
                raise ProviderUnreachable(
                    f"{FAILED_ROUNDS} rounds of batches in a row answered nothing ({reasons}); "
                    f"{self.progress.done} items were labeled, {len(items)} wait (run {run_id})"
                )
            items = await self._reload(items)
        await self._consume(submitted)  # a resumed run with nothing left to label

    async def _round(
        self, items: dict[str, tuple[Item, dict]], writer: ResultWriter, run_id: str
    ) -> dict[str, tuple[Item, dict]]:
        """Replay every item; keep those that asked for more, write the rest."""
        still: dict[str, tuple[Item, dict]] = {}
        for item_id, (item, stored) in items.items():
            asked = {c.name: len(c.asked) for c in self.collectors.values()}
            entry, answered = await self._label(item, stored, run_id)
            retry = entry["retry"]
            if retry is not None and retry["reason"] == ASKED_IN_BATCH:
                still[item_id] = (item, stored)
                writer.add({"drafts": entry["drafts"], "decision": None, "retry": None})
                self.progress.cost_usd += sum(d["cost_usd"] for d in entry["drafts"])
                self.on_progress(self.progress)
                continue
            for collector in self.collectors.values():  # decided or waiting: ask nothing more
                del collector.asked[asked[collector.name] :]
            writer.add(entry)
            self._count(entry, answered)
        await writer.flush()
        if writer.failure() is not None:
            raise writer.failure()
        return still

    async def _reload(self, items: dict[str, tuple[Item, dict]]) -> dict[str, tuple[Item, dict]]:
        """The items' stored drafts, now with the last round's answers."""
        ids = list(items)
        decided, stored = await asyncio.to_thread(
            with_retries,
            self.db,
            lambda: log.pending_work(
                self.db,
                ids,
                self.guideline.content_hash,
                self.prompt_hash,
                self.model,
                [c.name for c in self.collectors.values()],
            ),
        )
        return {i: (items[i][0], stored.get(i, {})) for i in ids if i not in decided}

    async def _consume(self, submitted: list[Submitted]) -> None:
        """Batches whose answers are now in drafts get their final status: they are not read
        again (until then a killed run's successor reads them once more, paying nothing)."""
        for s in submitted:
            if s.consumed:
                continue
            status = "consumed" if s.state.status == "completed" else s.state.status
            await asyncio.to_thread(
                logged.record_status, self.db, s.submission.submission_id, status, s.state.error
            )
            s.consumed = True

    async def _submit(
        self, asked: list[tuple[Collector, SampleRequest]], run_id: str, round_number: int
    ) -> list[Submitted]:
        by_model: dict[str, list[SampleRequest]] = {}
        for collector, request in asked:
            by_model.setdefault(collector.name, []).append(request)
        submitted = []
        for model, requests in by_model.items():
            collector = self.collectors[model]
            for start in range(0, len(requests), MAX_LINES):
                part = requests[start : start + MAX_LINES]
                submission = await self._upload(collector, part, run_id, round_number)
                submitted.append(Submitted(submission, collector))
        lines = sum(len(s.submission.lines) for s in submitted)
        self.notice(f"round {round_number}: {len(submitted)} batches, {lines} requests")
        return submitted

    async def _upload(
        self, collector: Collector, requests: list[SampleRequest], run_id: str, round_number: int
    ) -> logged.Submission:
        """Upload the requests as a JSONL file and log it with its lines, before any batch."""
        backend = collector.backend
        lines, body = [], []
        for index, request in enumerate(requests):
            line = logged.Line(
                custom_id=f"r{round_number}-{index}",
                item_id=request.item.item_id,
                model=collector.name,
                seed=request.seed,
                # The pipeline seeds a request with audit_seed * 1000 + the samples it has.
                first_sample=request.seed - self.settings.audit_seed * 1000,
                n=request.n,
            )
            lines.append(line)
            body.append(
                json.dumps(
                    {
                        "custom_id": line.custom_id,
                        "method": "POST",
                        "url": ENDPOINT,
                        "body": backend.batch_line(request),
                    },
                    ensure_ascii=False,
                )
            )
        data = ("\n".join(body) + "\n").encode()
        submission_id = uuid.uuid4().hex[:16]
        clients = backend.batches()
        file_id = await backend.batch_call(
            lambda: clients.upload(f"labelagent-{submission_id}.jsonl", data)
        )
        submission = logged.Submission(
            submission_id, collector.name, round_number, file_id, None, "uploaded", lines
        )
        await asyncio.to_thread(
            with_retries,
            self.db,
            lambda: logged.record_upload(
                self.db,
                submission,
                run_id,
                self.guideline.content_hash,
                self.prompt_hash,
                self.model,
            ),
        )
        return submission

    async def _finish(self, submitted: list[Submitted]) -> None:
        """Create the batches not yet created, poll all of them to the end, and hand their
        answered lines to their collectors."""
        await asyncio.gather(*(self._finish_one(s) for s in submitted))

    async def _find_or_create(self, clients: Any, sub: logged.Submission) -> str:
        """The batch of the submission's input file: the one a killed run created, else a new
        one. Looked for again before every retry, so a creation whose answer was lost is not
        repeated."""
        found = await clients.find(sub.input_file_id)
        if found is not None:
            return found
        return await clients.create(sub.input_file_id)

    async def _finish_one(self, s: Submitted) -> None:
        backend, sub = s.collector.backend, s.submission
        clients = backend.batches()
        if sub.batch_id is None:
            sub.batch_id = await backend.batch_call(lambda: self._find_or_create(clients, sub))
            await asyncio.to_thread(logged.record_batch, self.db, sub.submission_id, sub.batch_id)
        while True:
            state = await backend.batch_call(lambda: clients.retrieve(sub.batch_id))
            if state.finished:
                break
            await asyncio.sleep(self.poll_seconds)
        s.state = state
        rows = []
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id is not None:
                data = await backend.batch_call(lambda f=file_id: clients.content(f))
                rows += [json.loads(line) for line in data.splitlines() if line.strip()]
        by_id = {line.custom_id: line for line in sub.lines}
        for row in rows:
            line = by_id.get(row.get("custom_id"))
            if line is not None and row.get("response") is not None:
                s.collector.lines[(line.item_id, line.seed)] = row
                s.answered += 1
        missing = len(sub.lines) - s.answered
        if missing:
            why = f" ({state.error})" if state.error else ""
            s.notes.append(
                f"batch {sub.batch_id} of {sub.model} {state.status}{why}: {missing} of its "
                f"{len(sub.lines)} requests got no answer and are sent again in a new batch"
            )
            self.notice(s.notes[-1])
