"""A labeling run: read items, draft samples adaptively, aggregate, route, and log it all.

Items stream from the input in chunks; a fixed number of workers label them concurrently; results
are written in small batched transactions, so a kill loses at most the last unflushed second of
work and never leaves half an item behind (drafts and their decision commit together).

An item whose model did not answer (the provider failed after every retry, or the budget could
not cover the next request) gets no decision: its answered drafts are stored, it is listed in
`retries`, and the next run labels it. Items in a row that the provider failed stop the run
(a circuit breaker), so an outage does not burn through the input.
"""

import asyncio
import gc
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from labelagent import inputs
from labelagent.budget import Budget
from labelagent.calibration.rule import Thresholds, audit_draw, route
from labelagent.cascade import Stage, cascade_key, tried_stage
from labelagent.consistency import build_verdict, round_size, should_stop
from labelagent.errors import BudgetExceeded, ConfigError, ProviderUnreachable
from labelagent.examples import ExamplePicker, ExampleSettings, load_picker
from labelagent.guidelines import Guideline
from labelagent.item_checks import DEFAULT_MAX_ITEM_BYTES
from labelagent.records import (
    ASKED_IN_BATCH,
    Backend,
    Decision,
    Example,
    Item,
    Sample,
    SampleRequest,
)
from labelagent.store import log
from labelagent.store.db import migrate, transaction
from labelagent.store.keys import audit_key
from labelagent.store.writer import ResultWriter, with_retries
from labelagent.tasks import build_messages, prompt_hash


class RunSettings(BaseModel):
    samples: int = 5
    temperature: float = 0.7
    stop_confidence: float = 0.85
    early_stop: bool = True  # False: every item gets all `samples` (fixed K)
    limit: int | None = None
    budget_usd: float | None = None  # for the guideline and these models, over every run
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES
    breaker_items: int = 5  # items in a row the provider failed before the run stops
    audit_seed: int = 0
    calibration_share: float = 0.0  # a cascade's items run through every stage (and audit items)
    chunk_size: int = 500
    flush_seconds: float = 1.0
    flush_items: int = 200


@dataclass
class Progress:
    total: int = 0
    skipped: int = 0
    done: int = 0
    auto: int = 0
    escalated: int = 0
    requests_samples: int = 0
    stored_samples_reused: int = 0
    cost_usd: float = 0.0  # this run's
    spent_before_usd: float = 0.0  # earlier runs' on this guideline with these models
    waiting: int = 0  # items left undecided, to be tried again
    stopped_by_budget: bool = False
    stopped_by_outage: bool = False
    outage: str = ""  # the provider's last failure
    run_id: str = ""


class Labeler:
    def __init__(
        self,
        db: str | Path,
        guideline: Guideline,
        backends: list[Backend],
        settings: RunSettings,
        thresholds: Thresholds,
        concurrency: int = 8,
        on_progress: Callable[[Progress], None] | None = None,
        escalate_to: list[Stage] | None = None,
        examples: ExampleSettings | None = None,
    ) -> None:
        """`backends` (the main model and its jury) with `thresholds` is the first stage; the
        stages of `escalate_to` follow it (agent/cascade.py)."""
        self.db, self.guideline = db, guideline
        self.stages = [Stage(backends, thresholds), *(escalate_to or [])]
        self.backends = [b for stage in self.stages for b in stage.backends]
        self.settings, self.thresholds = settings, thresholds
        self.workers = max(1, concurrency)
        self.on_progress = on_progress or (lambda progress: None)
        self.prompt_hash = prompt_hash(guideline)
        self.example_settings = examples
        self.examples: ExamplePicker | None = None
        self.model = cascade_key([stage.models for stage in self.stages])
        self.progress = Progress()
        self.budget: Budget | None = None
        self._failed_in_row = 0

    def run(
        self, input_path: str | Path, id_field: inputs.IdField = inputs.DEFAULT_ID_FIELD
    ) -> Progress:
        # What is alive now (the imported modules, litellm's alone ~140 MB) stays alive: frozen,
        # the garbage collector stops walking it on every full collection during the run.
        gc.freeze()
        try:
            return asyncio.run(self.arun(input_path, id_field))
        finally:
            gc.unfreeze()

    async def arun(
        self, input_path: str | Path, id_field: inputs.IdField = inputs.DEFAULT_ID_FIELD
    ) -> Progress:
        """The file is read twice: `scan` checks every item and keeps its key (id, content hash,
        line), so bad input and ids stored with other content are refused before anything is
        written; then one streaming pass adds each chunk of items to the log and labels what it
        has no decision for."""
        keys = inputs.ItemKeys()
        summary = inputs.scan(
            input_path, self.guideline.fields, id_field, self.settings.max_item_bytes, keys
        )
        total = (
            summary.n_items
            if self.settings.limit is None
            else min(summary.n_items, self.settings.limit)
        )
        migrate(self.db)
        with transaction(self.db) as con:
            self.audit_key = audit_key(con)
        await self._pick_examples()
        run_id = uuid.uuid4().hex[:12]
        self.progress = Progress(total=total, run_id=run_id)
        self.budget = self._budget()
        log.check_ids(self.db, str(summary.path), keys, total)
        del keys  # checked: the streaming pass reads the ids from the file again
        log.record_guideline(self.db, self.guideline)
        log.start_run(self.db, self._run_record(run_id, summary))
        writer = ResultWriter(self.db, self.settings.flush_items, self.settings.flush_seconds)
        await writer.start()
        chunks = self._added_chunks(summary, id_field.name)
        status = "stopped"
        try:
            await self._label_all(self._pending(chunks), writer, run_id)
            stopped = self.progress.stopped_by_budget or self.progress.stopped_by_outage
            status = "stopped" if stopped else "finished"
        finally:
            await writer.flush()
            if writer.failure() is None:
                log.finish_run(self.db, run_id, status)
            await writer.close()
            for backend in self.backends:
                if hasattr(backend, "aclose"):  # a remote model's connections
                    await backend.aclose()
        if writer.failure() is None:
            await asyncio.to_thread(_drain, chunks)  # a stopped run still logs every item
        self._raise_if_incomplete(writer)
        return self.progress

    async def _pick_examples(self) -> None:
        """With --examples, the pool of trusted labels, read once. The example setting (N, the
        selector, the pool's ids and labels) is part of the run's prompt hash: a prompt with
        other examples is another configuration, whose drafts and decisions are its own."""
        if self.example_settings is None or self.example_settings.n == 0:
            return
        self.examples = load_picker(self.db, self.guideline, self.example_settings)
        await self.examples.embed_pool()
        combined = f"{prompt_hash(self.guideline)}:{self.examples.setting_hash}"
        self.prompt_hash = hashlib.sha256(combined.encode()).hexdigest()[:16]

    def _budget(self) -> Budget | None:
        """The run's share of --budget: what is left after earlier runs of this guideline with
        these models. None without a budget."""
        limit = self.settings.budget_usd
        if limit is None:
            return None
        unpriced = [b.name for b in self.backends if not b.priced]
        if unpriced:
            raise ConfigError(
                f"--budget needs models with a known price; litellm's price table has no "
                f"{', '.join(unpriced)}",
                hint="Leave out --budget, or use a model name litellm prices (litellm.model_cost).",
            )
        spent = log.spent(self.db, self.guideline.content_hash, [b.name for b in self.backends])
        self.progress.spent_before_usd = spent
        if spent >= limit:
            raise BudgetExceeded(
                f"the budget of ${limit:.4f} for {self._scope()} is spent already "
                f"(${spent:.4f} by earlier runs); nothing was sent"
            )
        return Budget(limit, spent)

    def _scope(self) -> str:
        models = ", ".join(b.name for b in self.backends)
        return f"guideline {self.guideline.name!r} with {models}"

    def _raise_if_incomplete(self, writer: ResultWriter) -> None:
        """The run's outcome when not every item got a decision, worst first."""
        p = self.progress
        failure = writer.failure()
        if failure is not None:
            raise failure
        if p.stopped_by_outage:
            raise ProviderUnreachable(
                f"stopped after {self.settings.breaker_items} items in a row got no answer: "
                f"{p.outage}. {p.done} items were labeled; {p.waiting} wait for a retry and the "
                f"rest were not started (run {p.run_id})"
            )
        if p.stopped_by_budget:
            total = p.spent_before_usd + p.cost_usd
            raise BudgetExceeded(
                f"stopped at the budget of ${self.settings.budget_usd:.4f} for {self._scope()}: "
                f"${total:.4f} spent in all, ${p.cost_usd:.4f} of it by this run ({p.run_id}); "
                f"{p.done} items labeled, {p.waiting} cut short, the rest not started"
            )
        if p.waiting:
            raise ProviderUnreachable(
                f"{p.waiting} items got no answer ({p.outage}); {p.done} were labeled (run "
                f"{p.run_id})"
            )

    def _added_chunks(self, summary: inputs.InputSummary, id_field: str) -> Iterator[list[Item]]:
        """The items up to --limit in chunks, each added to the log before it is yielded."""
        seen = 0
        for chunk in inputs.iter_items(
            summary.path, id_field, summary.id_source, self.settings.chunk_size
        ):
            if self.settings.limit is not None:
                chunk = chunk[: max(0, self.settings.limit - seen)]
            seen += len(chunk)
            if not chunk:
                return
            with_retries(
                self.db, lambda chunk=chunk: log.insert_items(self.db, summary.dataset, chunk)
            )
            yield chunk

    async def _pending(
        self, chunks: Iterator[list[Item]]
    ) -> AsyncIterator[tuple[Item, dict[str, list[Sample]]]]:
        models = [b.name for b in self.backends]
        while chunk := await asyncio.to_thread(next, chunks, None):
            ids = [i.item_id for i in chunk]
            decided, stored = await asyncio.to_thread(
                with_retries,
                self.db,
                lambda ids=ids: log.pending_work(
                    self.db, ids, self.guideline.content_hash, self.prompt_hash, self.model, models
                ),
            )
            self.progress.skipped += len(decided)
            for item in chunk:
                if item.item_id not in decided:
                    yield item, stored.get(item.item_id, {})
            self.on_progress(self.progress)

    async def _label_all(self, pending: AsyncIterator, writer: ResultWriter, run_id: str) -> None:
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.workers * 2)

        feed_error: list[BaseException] = []

        async def feed() -> None:
            """Queue the pending items until a stop; an error reading them stops the feed, not
            the items in flight."""
            try:
                async for work in pending:
                    if self._stopping(writer):
                        break
                    await queue.put(work)
            except Exception as e:
                feed_error.append(e)
            for _ in range(self.workers):
                await queue.put(None)

        async def work() -> None:
            while (job := await queue.get()) is not None:
                if self._stopping(writer):
                    continue  # not started: it stays pending for the next run
                entry, answered = await self._label(*job, run_id)
                writer.add(entry)
                self._count(entry, answered)
                if writer.due():
                    await writer.flush(wait=False)

        tasks = [asyncio.create_task(work()) for _ in range(self.workers)]
        feeder = asyncio.create_task(feed())
        try:
            await asyncio.gather(feeder, *tasks)
        except BaseException:
            feeder.cancel()
            for task in tasks:
                task.cancel()
            raise
        if feed_error:
            raise feed_error[0]

    def _stopping(self, writer: ResultWriter) -> bool:
        p = self.progress
        limit = self.settings.budget_usd
        if self.budget is not None and (
            self.budget.refused or p.spent_before_usd + p.cost_usd >= limit
        ):
            p.stopped_by_budget = True
        return p.stopped_by_budget or p.stopped_by_outage or writer.cause is not None

    async def _label(
        self, item: Item, stored: dict[str, list[Sample]], run_id: str
    ) -> tuple[dict, bool]:
        """The item's log entry (its new drafts, and its decision or why it has none), and
        whether any model answered. The stages are tried in order until one accepts the item
        (all of them for audit and calibration items); stored drafts are reused, so a resumed
        item goes on where it stopped."""
        if self.examples:
            await self.examples.embed_item(item)
        examples = self.examples.for_item(item) if self.examples else []
        shown = [e.item.item_id for e in examples] if self.examples else None
        messages = build_messages(self.guideline, item, examples)
        keys = (item.item_id, self.guideline.content_hash, self.prompt_hash)
        reused = {(s.model, s.sample_index) for ss in stored.values() for s in ss}
        self.progress.stored_samples_reused += len(reused)
        entry: dict = {"drafts": [], "decision": None, "retry": None}
        every_stage = self._runs_every_stage(item.item_id)
        answered, tried, chosen = False, [], None
        for index, stage in enumerate(self.stages):
            by_model = await asyncio.gather(
                *(
                    self._sample_model(b, item, messages, examples, stored.get(b.name, []))
                    for b in stage.backends
                )
            )
            samples = {b.name: s for b, (s, _) in zip(stage.backends, by_model, strict=True)}
            unanswered = [u for _, u in by_model if u is not None]
            new = [
                s for ss in samples.values() for s in ss if (s.model, s.sample_index) not in reused
            ]
            entry["drafts"] += [log.draft_row(*keys, run_id, s, shown) for s in new]
            answered |= bool(new) or len(unanswered) < len(stage.backends)
            if unanswered:
                entry["retry"] = log.retry_row(*keys, self.model, run_id, _why_waiting(unanswered))
                return entry, answered
            verdict = build_verdict(self.guideline, samples)
            routed, reasons = route(
                verdict,
                stage.thresholds,
                item.item_id,
                self.guideline.content_hash,
                self.audit_key,
                self.settings.audit_seed,
            )
            accepted = routed == "auto" or reasons == ["audit"]
            tried.append(tried_stage(stage.models, verdict, accepted, reasons))
            if accepted and chosen is None:
                chosen = (index, verdict, routed, reasons)
            if chosen is not None and not every_stage:
                break
        if chosen is None:
            tried[-1]["route"] = "escalated"
            every_reason = list(dict.fromkeys(r for stage in tried for r in stage["reasons"]))
            chosen = (len(tried) - 1, verdict, "escalated", every_reason)
        index, verdict, routed, reasons = chosen
        decision = Decision(
            item_id=item.item_id,
            guideline_hash=self.guideline.content_hash,
            run_id=run_id,
            model=self.model,
            prompt_hash=self.prompt_hash,
            verdict=verdict,
            route=routed,
            reasons=reasons,
            rule=self.stages[index].thresholds.model_dump(),
            stage=index,
            stages_tried=tried,
        )
        entry["decision"] = log.decision_row(decision)
        return entry, True

    def _runs_every_stage(self, item_id: str) -> bool:
        """Audit items and a calibration share of the others, by the item's audit draw."""
        if len(self.stages) == 1:
            return False
        share = self.thresholds.audit_share + self.settings.calibration_share
        draw = audit_draw(
            item_id, self.guideline.content_hash, self.audit_key, self.settings.audit_seed
        )
        return draw < share

    async def _sample_model(
        self,
        backend: Backend,
        item: Item,
        messages: list[dict[str, str]],
        examples: list[Example],
        stored: list[Sample],
    ) -> tuple[list[Sample], Sample | None]:
        """The model's samples for the item, stored ones first, and the sample it did not
        answer, if any (sampling stops there)."""
        # A deterministic backend (a student) says how few samples tell all: `max_samples`.
        k = min(self.settings.samples, getattr(backend, "max_samples", self.settings.samples))
        samples = sorted(stored, key=lambda s: s.sample_index)[:k]
        confidence = self.settings.stop_confidence if self.settings.early_stop else None
        while not should_stop(samples, k, confidence):
            costs = backend.round_costs() if hasattr(backend, "round_costs") else None
            n = round_size(samples, k, confidence, costs)
            request = SampleRequest(
                guideline=self.guideline,
                item=item,
                messages=messages,
                examples=examples,
                n=n,
                seed=self.settings.audit_seed * 1000 + len(samples),
                temperature=self.settings.temperature,
                budget=self.budget,
            )
            drawn = (await backend.sample(request))[:n]
            answered = [s for s in drawn if s.unanswered is None]
            self.progress.requests_samples += len(answered)
            for s in answered:
                s.sample_index = len(samples)
                samples.append(s)
            if len(answered) < len(drawn):
                return samples, next(s for s in drawn if s.unanswered is not None)
        return samples, None

    def _count(self, entry: dict, answered: bool) -> None:
        """Progress, and the circuit breaker: items in a row the provider failed."""
        p = self.progress
        p.cost_usd += sum(d["cost_usd"] for d in entry["drafts"])
        retry, decision = entry["retry"], entry["decision"]
        if retry is not None:
            p.waiting += 1
            if retry["reason"] == "provider":
                p.outage = retry["error"]
        else:
            p.done += 1
            p.auto += decision["route"] == "auto"
            p.escalated += decision["route"] != "auto"
        if answered:
            self._failed_in_row = 0
        elif retry is not None and retry["reason"] == "provider":
            self._failed_in_row += 1
            if self._failed_in_row >= self.settings.breaker_items:
                p.stopped_by_outage = True
        self.on_progress(p)

    def _run_record(self, run_id: str, summary: inputs.InputSummary) -> dict:
        return {
            "run_id": run_id,
            "command": "label",
            "dataset": summary.dataset,
            "guideline_hash": self.guideline.content_hash,
            "prompt_hash": self.prompt_hash,
            "model": self.model,
            "jury": [b.name for b in self.backends[1:]],
            "stages": [stage.models for stage in self.stages],
            "settings": {
                **self.settings.model_dump(),
                "thresholds": self.thresholds.model_dump(),
                "examples": self.examples.describe() if self.examples else None,
                "input": str(summary.path),
            },
        }


def _drain(chunks: Iterator[list[Item]]) -> None:
    for _ in chunks:
        pass


def _why_waiting(unanswered: list[Sample]) -> Sample:
    """The unanswered sample that keeps the item waiting: a failure (provider, budget) before a
    request still out in a batch, so that the item waits for the next run whichever model's
    answer came back first."""
    return next((u for u in unanswered if u.unanswered != ASKED_IN_BATCH), unanswered[0])
