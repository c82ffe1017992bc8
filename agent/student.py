"""The student: a small classifier that learns a guideline from the log's trusted labels, then
labels like any other model, for nothing per item, on CPU.

Features are TF-IDF weights (sublinear term frequency, smoothed idf, rows scaled to unit length)
of word unigrams and bigrams and of character 2- to 5-grams inside words; the classifier is a
multinomial logistic regression. For preference, the features of response B are subtracted from
those of response A (one vocabulary for both), with the difference of their log lengths beside
them; every pair is also learned swapped, label swapped, without an intercept, so the probability
that A is better is exactly one minus the probability for the swapped pair. The prompt is left
out: a prompt feature can only move the prior of A against B, not tell the two replies apart.

What it learned is plain data (vocabularies, idf weights, coefficients), stored in the log as
gzipped JSON: loading a student from a log someone hands you cannot run code, as a pickle could.
Scoring is a sparse matrix product on those arrays, so a reloaded student gives the same scores.
"""

import gzip
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from labelagent.errors import ConfigError
from labelagent.guidelines import Guideline
from labelagent.records import Sample, SampleRequest
from labelagent.tasks import task_for, task_named

STUDENT = "student"
FORMAT = 1
BLOCKS = (("word", (1, 2)), ("char_wb", (2, 5)))
MAX_FEATURES = 100_000  # per block: the most frequent n-grams
REGULARISATION = 10.0  # logistic regression's C; larger fits the training labels more closely
MIN_ITEMS = 10


def check_task(guideline: Guideline) -> None:
    """ConfigError before any work unless a student can learn this guideline's task."""
    if not task_for(guideline).student_learns:
        raise ConfigError(
            f"student supports classification and preference, not {guideline.task!r} "
            f"(guideline {guideline.name!r})",
            hint="Label this guideline with an LLM: --model openai/gpt-4o-mini, ollama/...",
        )


@dataclass
class Block:
    """One TF-IDF block: an analyzer, its vocabulary (column order) and idf weights."""

    analyzer: str
    ngram_range: tuple[int, int]
    vocabulary: list[str]
    idf: np.ndarray

    def __post_init__(self) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        self._counter = CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            vocabulary={term: i for i, term in enumerate(self.vocabulary)},
            dtype=np.float64,
        )

    @classmethod
    def fit(cls, analyzer: str, ngram_range: tuple[int, int], texts: list[str]) -> "Block":
        from sklearn.feature_extraction.text import CountVectorizer

        counter = CountVectorizer(
            analyzer=analyzer, ngram_range=ngram_range, max_features=MAX_FEATURES
        )
        counts = counter.fit_transform(texts)
        document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
        idf = np.log((1 + len(texts)) / (1 + document_frequency)) + 1
        return cls(analyzer, ngram_range, counter.get_feature_names_out().tolist(), idf)

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """Sublinear tf times idf, each row scaled to unit length (on the CSR arrays directly:
        scipy's matrix products cost more than the counting for one item)."""
        counts = self._counter.transform(texts).tocsr()
        weights = (1 + np.log(counts.data)) * self.idf[counts.indices]
        rows = np.repeat(np.arange(len(texts)), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(rows, weights=weights**2, minlength=len(texts)))
        norms[norms == 0] = 1.0
        weights /= norms[rows]
        return sparse.csr_matrix((weights, counts.indices, counts.indptr), shape=counts.shape)

    def as_json(self) -> dict[str, Any]:
        return {
            "analyzer": self.analyzer,
            "ngram_range": list(self.ngram_range),
            "vocabulary": self.vocabulary,
            "idf": self.idf.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Block":
        low, high = data["ngram_range"]
        return cls(data["analyzer"], (low, high), data["vocabulary"], np.array(data["idf"]))


def item_text(guideline: Guideline, fields: dict[str, Any]) -> str:
    return "\n".join(str(fields.get(name, "")) for name in guideline.fields)


def feature_parts(
    paired: bool,
    fields: list[str],
    blocks: list[Block],
    items: list[dict[str, Any]],
    swap: bool = False,
) -> list[sparse.csr_matrix]:
    """The feature columns in blocks: one per TF-IDF block; for `paired` responses (preference)
    A's minus B's, and the difference of log lengths last (`swap`: B's features minus A's)."""
    if not paired:
        texts = ["\n".join(str(i.get(name, "")) for name in fields) for i in items]
        return [block.transform(texts) for block in blocks]
    a = [str(i.get("response_a", "")) for i in items]
    b = [str(i.get("response_b", "")) for i in items]
    if swap:
        a, b = b, a
    lengths = [[math.log1p(len(x)) - math.log1p(len(y))] for x, y in zip(a, b, strict=True)]
    diffs = [block.transform(a) - block.transform(b) for block in blocks]
    return [*diffs, sparse.csr_matrix(lengths)]


@dataclass
class StudentModel:
    """A trained student: features, then one logit per label (for two labels: one row, the logit
    of the second)."""

    task: str
    fields: list[str]
    labels: list[str]
    blocks: list[Block]
    coef: np.ndarray
    intercept: np.ndarray

    def __post_init__(self) -> None:
        self._weights = np.ascontiguousarray(self.coef.T)

    def probabilities(self, items: list[dict[str, Any]]) -> np.ndarray:
        """One row per item, one column per label, summing to 1. Block by block: stacking the
        blocks first costs more than the products for one item."""
        logits = np.tile(self.intercept, (len(items), 1))
        start = 0
        paired = task_named(self.task).paired_responses
        for part in feature_parts(paired, self.fields, self.blocks, items):
            logits += part @ self._weights[start : start + part.shape[1]]
            start += part.shape[1]
        if self.coef.shape[0] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "task": self.task,
            "fields": self.fields,
            "labels": self.labels,
            "blocks": [block.as_json() for block in self.blocks],
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StudentModel":
        if data.get("format") != FORMAT:
            raise ConfigError(f"student parameters of format {data.get('format')!r} are unknown")
        return cls(
            task=data["task"],
            fields=data["fields"],
            labels=data["labels"],
            blocks=[Block.from_json(b) for b in data["blocks"]],
            coef=np.array(data["coef"], dtype=np.float64),
            intercept=np.array(data["intercept"], dtype=np.float64),
        )


def fit(guideline: Guideline, items: list[dict[str, Any]], labels: list[str]) -> StudentModel:
    """Train on the items' fields and their labels (deterministic: the same data gives the same
    parameters)."""
    from sklearn.linear_model import LogisticRegression

    check_task(guideline)
    if len(set(labels)) < 2:
        raise ConfigError(
            f"the trusted labels of {guideline.name!r} hold {len(set(labels))} distinct label(s);"
            " a student needs at least two",
            hint="Import or review more items first.",
        )
    preference = task_for(guideline).paired_responses
    if preference:
        texts = [str(i.get(f, "")) for f in ("response_a", "response_b") for i in items]
    else:
        texts = [item_text(guideline, i) for i in items]
    blocks = [Block.fit(kind, ngrams, texts) for kind, ngrams in BLOCKS]
    fields = list(guideline.fields)
    x = sparse.hstack(feature_parts(preference, fields, blocks, items)).tocsr()
    y = list(labels)
    if preference:
        swapped = feature_parts(preference, fields, blocks, items, swap=True)
        x = sparse.vstack([x, sparse.hstack(swapped)]).tocsr()
        y += [_other(guideline, label) for label in labels]
    classifier = LogisticRegression(
        C=REGULARISATION, max_iter=3000, fit_intercept=not preference
    ).fit(x, y)
    return StudentModel(
        task=guideline.task,
        fields=fields,
        labels=[str(c) for c in classifier.classes_],
        blocks=blocks,
        coef=np.asarray(classifier.coef_, dtype=np.float64),
        intercept=np.asarray(classifier.intercept_, dtype=np.float64).reshape(-1),
    )


def _other(guideline: Guideline, label: str) -> str:
    first, second = list(guideline.labels)[:2]
    return second if label == first else first


def encode(model: StudentModel) -> tuple[bytes, str]:
    """The parameters as gzipped JSON, and the sha256 of the JSON."""
    text = json.dumps(model.as_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return gzip.compress(text, mtime=0), hashlib.sha256(text).hexdigest()


def decode(blob: bytes) -> StudentModel:
    return StudentModel.from_json(json.loads(gzip.decompress(blob)))


class StudentBackend:
    """The `Backend` for a trained student. Its answer is the most probable label with that
    probability as the stated confidence, the same every time: one sample says all it will ever
    say, so its support is its probability and calibrate's threshold is a threshold on it."""

    max_samples = 1  # the pipeline draws no more than this from it

    def __init__(self, name: str, model: StudentModel, guideline: Guideline) -> None:
        check_task(guideline)
        unknown = set(model.labels) - set(guideline.labels)
        if model.task != guideline.task or unknown:
            raise ConfigError(
                f"{name} was trained for a {model.task} guideline with labels "
                f"{', '.join(model.labels)}; {guideline.name!r} does not fit it",
                hint="Train a student for this guideline: labelagent student train -g FILE",
            )
        self.name = name
        self.model = model

    @property
    def supports_n(self) -> bool:
        return True

    async def sample(self, request: SampleRequest) -> list[Sample]:
        started = time.perf_counter()
        try:
            probs = self.model.probabilities([request.item.fields])[0]
        except (ValueError, TypeError) as e:
            error = f"student scoring failed: {type(e).__name__}: {e}"
            return [Sample(model=self.name, error=error) for _ in range(request.n)]
        best = int(np.argmax(probs))
        latency_ms = (time.perf_counter() - started) * 1000
        return [
            Sample(
                model=self.name,
                label=self.model.labels[best],
                confidence=float(probs[best]),
                latency_ms=latency_ms,
            )
            for _ in range(request.n)
        ]


def student_backend(
    db: str | Path | None, guideline: Guideline | None, model: str
) -> StudentBackend:
    """`student` (the newest student for the guideline) or `student:<id>`, from the log."""
    from labelagent.store import students

    if db is None or guideline is None:
        raise ConfigError("--model student needs the log it was trained in (--db) and a guideline")
    check_task(guideline)
    if not Path(db).exists():
        raise ConfigError(
            f"{db}: no such database, so no student",
            hint="Import labels, then: labelagent student train --guideline FILE --db LOG",
        )
    wanted = None if model == STUDENT else model
    stored = students.load(db, guideline.content_hash, wanted)
    return StudentBackend(stored.student_id, decode(stored.params), guideline)
