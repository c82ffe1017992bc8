"""Few-shot examples: trusted labels (a person's review or import, never a model's) shown in the
prompt as worked examples. `similar` picks, per item, the pool's items closest to it by TF-IDF
cosine similarity, or by the cosine of an embedding model's vectors when one is named (the pool
embedded once per run, each item as it comes); `diverse` picks once per run, covering every
label in turn; `fixed` picks once per run at random. Every choice is deterministic for a given
pool (and embedding model), and an item is never an example for itself."""

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labelagent.errors import ConfigError
from labelagent.guidelines import Guideline
from labelagent.records import Example, Item
from labelagent.store.students import trusted_rows
from labelagent.tasks.voting import vote_key

if TYPE_CHECKING:  # numpy is imported only when a run ranks by embeddings
    import numpy as np

SELECTORS = ("similar", "diverse", "fixed")


@dataclass(frozen=True)
class ExampleSettings:
    n: int = 0  # most examples per prompt; 0: none
    selector: str = "similar"  # one of SELECTORS
    embedding_model: str | None = None  # litellm model ranking `similar`; None: TF-IDF
    embedding_api_base: str | None = None  # where to ask it; None: its provider's API

    def __post_init__(self) -> None:
        if self.selector not in SELECTORS:
            raise ConfigError(
                f"--example-selector {self.selector!r}: use one of {', '.join(SELECTORS)}"
            )
        if self.embedding_model and self.selector != "similar":
            raise ConfigError(
                f"--embedding-model ranks similar examples; --example-selector {self.selector} "
                "does not rank",
                hint="Use --example-selector similar, or leave out --embedding-model.",
            )


def item_text(guideline: Guideline, item: Item) -> str:
    """The item's guideline fields as one text, for lexical similarity."""
    values = (item.fields.get(name, "") for name in guideline.fields)
    return "\n".join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values)


class ExamplePicker:
    """Picks up to `settings.n` examples for each item from a fixed pool of trusted labels."""

    def __init__(self, guideline: Guideline, pool: Sequence[Example], settings: ExampleSettings):
        self.guideline, self.settings = guideline, settings
        self.pool = sorted(pool, key=lambda e: e.item.item_id)
        self.setting_hash = _setting_hash(settings, self.pool)
        self._rng = random.Random(self.setting_hash)
        self._once = self._run_order() if settings.selector != "similar" else []
        lexical = settings.selector == "similar" and not settings.embedding_model
        self._tfidf = self._index() if lexical else None
        self._pool_vectors: np.ndarray | None = None
        self._item_vectors: dict[str, np.ndarray] = {}

    async def embed_pool(self) -> None:
        """With an embedding model, the pool's vectors, once: call before the first item, so an
        unknown or unreachable model stops the run before anything is labeled (ModelError)."""
        if self.settings.embedding_model and self._pool_vectors is None:
            texts = [item_text(self.guideline, e.item) for e in self.pool]
            self._pool_vectors = await self._embed(texts)

    async def embed_item(self, item: Item) -> None:
        """With an embedding model, the item's vector, kept until `for_item` uses it."""
        if self.settings.embedding_model and item.item_id not in self._item_vectors:
            self._item_vectors[item.item_id] = (
                await self._embed([item_text(self.guideline, item)])
            )[0]

    def for_item(self, item: Item) -> list[Example]:
        """The item's examples; with an embedding model, after `embed_pool` and `embed_item`."""
        n = self.settings.n
        if self.settings.selector != "similar":
            return [e for e in self._once if e.item.item_id != item.item_id][:n]
        scores = self._similarity(item)
        ranked = sorted(range(len(self.pool)), key=lambda i: (-scores[i], i))
        chosen = [self.pool[i] for i in ranked if self.pool[i].item.item_id != item.item_id]
        return chosen[:n]

    def _similarity(self, item: Item) -> "np.ndarray":
        if self._tfidf is not None:
            from sklearn.metrics.pairwise import linear_kernel

            vectorizer, matrix = self._tfidf
            return linear_kernel(vectorizer.transform([item_text(self.guideline, item)]), matrix)[0]
        if self._pool_vectors is None or item.item_id not in self._item_vectors:
            raise RuntimeError("embed_pool and embed_item come before for_item")
        return self._pool_vectors @ self._item_vectors.pop(item.item_id)

    async def _embed(self, texts: list[str]) -> "np.ndarray":
        """Unit-length embeddings (rows), so their dot product is the cosine."""
        import numpy as np

        from labelagent.llm import embed

        model, base = self.settings.embedding_model, self.settings.embedding_api_base
        assert model is not None
        vectors = np.asarray(await embed(model, texts, api_base=base), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def describe(self) -> dict:
        """The setting as stored with the run."""
        return {
            "n": self.settings.n,
            "selector": self.settings.selector,
            "embedding_model": self.settings.embedding_model,
            "pool": len(self.pool),
            "setting_hash": self.setting_hash,
        }

    def _run_order(self) -> list[Example]:
        """n + 1 examples (one can be the item itself), the same for every item of the run."""
        pool = list(self.pool)
        self._rng.shuffle(pool)
        if self.settings.selector == "fixed":
            return pool[: self.settings.n + 1]
        by_label: dict[str, list[Example]] = {}
        for example in pool:
            by_label.setdefault(vote_key(example.label), []).append(example)
        order = [vote_key(name) for name in self.guideline.labels]
        groups = sorted(by_label, key=lambda k: (order.index(k) if k in order else len(order), k))
        picked: list[Example] = []
        while len(picked) < min(self.settings.n + 1, len(pool)):
            for key in groups:
                if by_label[key]:
                    picked.append(by_label[key].pop(0))
        return picked[: self.settings.n + 1]

    def _index(self) -> tuple:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        matrix = vectorizer.fit_transform([item_text(self.guideline, e.item) for e in self.pool])
        return vectorizer, matrix


def _setting_hash(settings: ExampleSettings, pool: Sequence[Example]) -> str:
    key = [settings.n, settings.selector]
    if settings.embedding_model:
        key.append(settings.embedding_model)
    digest = hashlib.sha256(json.dumps(key).encode())
    for example in pool:
        digest.update(f"{example.item.item_id}\0{vote_key(example.label)}\0".encode())
    return digest.hexdigest()[:16]


def trusted_pool(db: str | Path, guideline: Guideline) -> list[Example]:
    """The guideline's trusted labels: every item's final human label (reviews and imports)."""
    return [
        Example(item=Item(item_id=row.item_id, fields=row.fields), label=row.label)
        for row in trusted_rows(db, guideline.content_hash, include_auto=False)
    ]


def load_picker(db: str | Path, guideline: Guideline, settings: ExampleSettings) -> ExamplePicker:
    """The run's picker; ConfigError when the log has no trusted label to show."""
    pool = trusted_pool(db, guideline)
    if not pool:
        raise ConfigError(
            f"--examples {settings.n} needs trusted labels, and {db} has none for guideline "
            f"{guideline.name!r} (version {guideline.content_hash[:8]})",
            hint="Review some items (labelagent review) or import human labels "
            "(labelagent import), then run again; or leave out --examples.",
        )
    return ExamplePicker(guideline, pool, settings)
