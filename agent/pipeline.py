"""A labeling run: read items, draft samples adaptively, aggregate, route, and log it all.

Items stream from the input in chunks; a fixed number of workers label them concurrently; results
are written in small batched transactions, so a kill loses at most the last unflushed second of
work and never leaves half an item behind (drafts and their decision commit together).
"""

import asyncio
import gc
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from agent import inputs
from agent.consistency import build_verdict, next_batch, should_stop
from agent.errors import BudgetExceeded
from agent.guidelines import Guideline
from agent.item_checks import DEFAULT_MAX_ITEM_BYTES
from agent.records import Backend, Decision, Item, Sample, SampleRequest
from agent.routing import Thresholds, route
from agent.store import log
from agent.store.db import migrate, transaction
from agent.store.keys import audit_key
from agent.tasks import build_messages, prompt_hash


class RunSettings(BaseModel):
    samples: int = 5
    temperature: float = 0.7
    stop_confidence: float = 0.85
    early_stop: bool = True  # False: every item gets all `samples` (fixed K)
    limit: int | None = None
    budget_usd: float | None = None
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES
    audit_seed: int = 0
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
    cost_usd: float = 0.0
    stopped_by_budget: bool = False
    run_id: str = ""


class _Writer:
    """Buffers finished items and writes them in one transaction per flush."""

    def __init__(self, db: str | Path, every_items: int, every_seconds: float) -> None:
        self.db, self.every_items, self.every_seconds = db, every_items, every_seconds
        self.drafts: list[tuple[str, str, str, str, Sample]] = []
        self.decisions: list[Decision] = []
        self.last = time.monotonic()

    def add(self, drafts: list[tuple[str, str, str, str, Sample]], decision: Decision) -> None:
        self.drafts.extend(drafts)
        self.decisions.append(decision)

    def due(self) -> bool:
        return len(self.decisions) >= self.every_items or (
            bool(self.decisions) and time.monotonic() - self.last >= self.every_seconds
        )

    def take(self) -> tuple[list, list[Decision]]:
        """Hand over what is buffered and start a new buffer (on the event loop, so no worker's
        result can slip between the write and the reset)."""
        batch = (self.drafts, self.decisions)
        self.drafts, self.decisions = [], []
        self.last = time.monotonic()
        return batch

    async def flush(self) -> None:
        drafts, decisions = self.take()
        if drafts or decisions:
            await asyncio.to_thread(log.write_results, self.db, drafts, decisions)


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
    ) -> None:
        self.db, self.guideline = db, guideline
        self.backends, self.settings, self.thresholds = backends, settings, thresholds
        self.workers = max(1, concurrency)
        self.on_progress = on_progress or (lambda progress: None)
        self.prompt_hash = prompt_hash(guideline)
        self.model = backends[0].name
        self.progress = Progress()

    def run(
        self, input_path: str | Path, id_field: str = "id", id_field_explicit: bool = False
    ) -> Progress:
        # What is alive now (the imported modules, litellm's alone ~140 MB) stays alive: frozen,
        # the garbage collector stops walking it on every full collection during the run.
        gc.freeze()
        try:
            return asyncio.run(self.arun(input_path, id_field, id_field_explicit))
        finally:
            gc.unfreeze()

    async def arun(
        self, input_path: str | Path, id_field: str = "id", id_field_explicit: bool = False
    ) -> Progress:
        summary = inputs.scan(
            input_path,
            self.guideline.fields,
            id_field,
            id_field_explicit,
            self.settings.max_item_bytes,
        )
        total = (
            summary.n_items
            if self.settings.limit is None
            else min(summary.n_items, self.settings.limit)
        )
        migrate(self.db)
        with transaction(self.db) as con:
            self.audit_key = audit_key(con)
        log.insert_items(
            self.db, summary.dataset, str(summary.path), lambda: self._chunks(summary, id_field)
        )
        log.record_guideline(self.db, self.guideline)
        run_id = uuid.uuid4().hex[:12]
        self.progress = Progress(total=total, run_id=run_id)
        log.start_run(self.db, self._run_record(run_id, summary))
        writer = _Writer(self.db, self.settings.flush_items, self.settings.flush_seconds)
        status = "stopped"
        try:
            await self._label_all(self._pending(summary, id_field), writer, run_id)
            status = "stopped" if self.progress.stopped_by_budget else "finished"
        finally:
            await writer.flush()
            log.finish_run(self.db, run_id, status)
        if self.progress.stopped_by_budget:
            raise BudgetExceeded(
                f"stopped at the budget of ${self.settings.budget_usd:.2f} after "
                f"{self.progress.done} items (run {run_id}, ${self.progress.cost_usd:.4f} spent)"
            )
        return self.progress

    def _chunks(self, summary: inputs.InputSummary, id_field: str):
        seen = 0
        for chunk in inputs.iter_items(
            summary.path, id_field, summary.id_source, self.settings.chunk_size
        ):
            if self.settings.limit is not None:
                chunk = chunk[: max(0, self.settings.limit - seen)]
            seen += len(chunk)
            if chunk:
                yield chunk

    async def _pending(
        self, summary: inputs.InputSummary, id_field: str
    ) -> AsyncIterator[tuple[Item, dict[str, list[Sample]]]]:
        models = [b.name for b in self.backends]
        for chunk in self._chunks(summary, id_field):
            decided, stored = await asyncio.to_thread(
                log.pending_work,
                self.db,
                [i.item_id for i in chunk],
                self.guideline.content_hash,
                self.prompt_hash,
                self.model,
                models,
            )
            self.progress.skipped += len(decided)
            for item in chunk:
                if item.item_id not in decided:
                    yield item, stored.get(item.item_id, {})
            self.on_progress(self.progress)

    async def _label_all(self, pending: AsyncIterator, writer: _Writer, run_id: str) -> None:
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.workers * 2)

        async def feed() -> None:
            async for work in pending:
                if self._over_budget():
                    self.progress.stopped_by_budget = True
                    break
                await queue.put(work)
            for _ in range(self.workers):
                await queue.put(None)

        async def work() -> None:
            while (job := await queue.get()) is not None:
                item, stored = job
                drafts, decision = await self._label(item, stored, run_id)
                writer.add(drafts, decision)
                self._count(decision, drafts)
                if writer.due():
                    await writer.flush()

        tasks = [asyncio.create_task(work()) for _ in range(self.workers)]
        feeder = asyncio.create_task(feed())
        try:
            await asyncio.gather(feeder, *tasks)
        except BaseException:
            feeder.cancel()
            for task in tasks:
                task.cancel()
            raise

    def _over_budget(self) -> bool:
        budget = self.settings.budget_usd
        return budget is not None and self.progress.cost_usd >= budget

    async def _label(
        self, item: Item, stored: dict[str, list[Sample]], run_id: str
    ) -> tuple[list, Decision]:
        messages = build_messages(self.guideline, item)
        by_model = await asyncio.gather(
            *(self._sample_model(b, item, messages, stored.get(b.name, [])) for b in self.backends)
        )
        samples = {b.name: s for b, s in zip(self.backends, by_model, strict=True)}
        reused = {(s.model, s.sample_index) for ss in stored.values() for s in ss}
        new = [s for ss in samples.values() for s in ss if (s.model, s.sample_index) not in reused]
        self.progress.stored_samples_reused += len(reused)
        verdict = build_verdict(self.guideline, samples)
        routed, reasons = route(
            verdict,
            self.thresholds,
            item.item_id,
            self.guideline.content_hash,
            self.audit_key,
            self.settings.audit_seed,
        )
        decision = Decision(
            item_id=item.item_id,
            guideline_hash=self.guideline.content_hash,
            run_id=run_id,
            model=self.model,
            prompt_hash=self.prompt_hash,
            verdict=verdict,
            route=routed,
            reasons=reasons,
            rule=self.thresholds.model_dump(),
        )
        drafts = [
            (item.item_id, self.guideline.content_hash, self.prompt_hash, run_id, s) for s in new
        ]
        return drafts, decision

    async def _sample_model(
        self, backend: Backend, item: Item, messages: list[dict[str, str]], stored: list[Sample]
    ) -> list[Sample]:
        # A deterministic backend (a student) says how few samples tell all: `max_samples`.
        k = min(self.settings.samples, getattr(backend, "max_samples", self.settings.samples))
        samples = sorted(stored, key=lambda s: s.sample_index)[:k]
        confidence = self.settings.stop_confidence if self.settings.early_stop else None
        while not should_stop(samples, k, confidence):
            n = min(next_batch(samples, k, confidence), k - len(samples))
            request = SampleRequest(
                guideline=self.guideline,
                item=item,
                messages=messages,
                n=n,
                seed=self.settings.audit_seed * 1000 + len(samples),
                temperature=self.settings.temperature,
            )
            drawn = await backend.sample(request)
            self.progress.requests_samples += len(drawn)
            for s in drawn[:n]:
                s.sample_index = len(samples)
                samples.append(s)
        return samples

    def _count(self, decision: Decision, drafts: list) -> None:
        p = self.progress
        p.done += 1
        p.cost_usd += sum(d[4].cost_usd for d in drafts)
        if decision.route == "auto":
            p.auto += 1
        else:
            p.escalated += 1
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
            "settings": {
                **self.settings.model_dump(),
                "thresholds": self.thresholds.model_dump(),
                "input": str(summary.path),
            },
        }
