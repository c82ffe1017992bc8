"""Configuration of the simulated annotator and loading of its gold table."""

import json
from dataclasses import dataclass, field
from pathlib import Path

FAULT_KINDS: tuple[str, ...] = ("429", "500", "timeout", "bad_json")
BATCH_FAULT_KINDS: tuple[str, ...] = ("none", "failed", "expired")


@dataclass
class SimConfig:
    """How the simulated annotator behaves.

    `gold` maps item id -> {"label": <canonical gold label>, optional "probs": {model: {label: p}}}.
    `fail_first` makes the first requests fail with these fault kinds, in order.
    `max_concurrent` queues requests beyond that many in flight (like a server with few slots).
    `models` is what GET /v1/models lists; completions accept any model name.
    `embedding_models` are the names /v1/embeddings answers (hashed bags of words); others: 404.
    `keep_history=False` stops recording request bodies (for long benchmarks).
    `rpm` enforces a requests-per-minute limit: 429 beyond it, `x-ratelimit-*` headers always.
    Batches (agent/simserver/batches.py) finish `batch_delay_seconds` after their creation;
    `batch_faults` says how the first batches end ("none", "failed", "expired"), in order, then
    `batch_fault_rate` of them fail or expire. Their lines draw faults as requests do. The first
    `lost_batch_creations` batches are created but answered with a 500, as if the answer was lost.
    `prompt_cache` reports cached prompt tokens as OpenAI's automatic prompt caching does.
    """

    accuracy: float = 0.9
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    hang_seconds: float = 30.0
    retry_after_ms: int = 50
    honour_n: bool = True
    seed: int = 0
    gold: dict[str, dict] = field(default_factory=dict)
    fail_first: list[str] = field(default_factory=list)
    max_concurrent: int | None = None
    models: tuple[str, ...] = ("sim",)
    embedding_models: tuple[str, ...] = ("sim-embed",)
    keep_history: bool = True
    rpm: int | None = None
    batch_delay_seconds: float = 0.0
    batch_faults: list[str] = field(default_factory=list)
    batch_fault_rate: float = 0.0
    lost_batch_creations: int = 0  # the first ones are made but answered with a 500
    prompt_cache: bool = False

    def __post_init__(self) -> None:
        unknown = [kind for kind in (*self.faults, *self.fail_first) if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
        wrong = [kind for kind in self.batch_faults if kind not in BATCH_FAULT_KINDS]
        if wrong:
            raise ValueError(f"unknown batch faults {wrong}; known: {list(BATCH_FAULT_KINDS)}")
        if not 0.0 <= self.accuracy <= 1.0 or not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("accuracy and fault_rate must lie in [0, 1]")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")


def load_gold(
    path: str | Path, id_field: str = "id", label_field: str = "label"
) -> dict[str, dict]:
    """Read a JSONL file of gold rows into a gold table, keeping each row's "probs" if present."""
    gold: dict[str, dict] = {}
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if id_field not in row or label_field not in row:
                raise ValueError(f"{path}:{number}: row lacks {id_field!r} or {label_field!r}")
            entry: dict = {"label": row[label_field]}
            if "probs" in row:
                entry["probs"] = row["probs"]
            gold[str(row[id_field])] = entry
    return gold
