"""`labelagent student train`: fit a student on the log's trusted labels and store it there,
with the items it learned from. A share of the trusted labels (`holdout`, fixed by item id) is
kept out of training, so `labelagent calibrate` has human labels the student never saw."""

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from labelagent.errors import ConfigError
from labelagent.guidelines import Guideline
from labelagent.store import log, students
from labelagent.store.db import migrate
from labelagent.student import (
    BLOCKS,
    MAX_FEATURES,
    MIN_ITEMS,
    REGULARISATION,
    check_task,
    encode,
    fit,
)


@dataclass
class Trained:
    student_id: str
    new: bool
    n_train: int
    n_auto: int
    n_kept_out: int
    kept_out_accuracy: float | None
    seconds: float
    labels: list[str]


def kept_out(item_id: str, share: float) -> bool:
    digest = hashlib.sha256(f"student-holdout:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def train_student(
    db: str | Path, guideline: Guideline, include_auto: bool = False, holdout: float = 0.3
) -> Trained:
    check_task(guideline)
    migrate(db)
    rows = students.trusted_rows(db, guideline.content_hash, include_auto)
    train = [r for r in rows if r.source == "auto" or not kept_out(r.item_id, holdout)]
    held = [r for r in rows if r not in train]
    if len(train) < MIN_ITEMS:
        raise ConfigError(
            f"{len(train)} trusted labels of {guideline.name!r} to train on"
            f" ({len(held)} kept out for calibrate); a student needs at least {MIN_ITEMS}",
            hint="Import labels (labelagent import-labels) or review more items first.",
        )
    started = time.perf_counter()
    model = fit(guideline, [r.fields for r in train], [r.label for r in train])
    seconds = time.perf_counter() - started
    accuracy = None
    if held:
        probs = model.probabilities([r.fields for r in held])
        predicted = [model.labels[i] for i in probs.argmax(axis=1)]
        accuracy = sum(p == r.label for p, r in zip(predicted, held, strict=True)) / len(held)
    params, sha = encode(model)
    training = [[r.item_id, r.label, r.source] for r in train]
    identity = hashlib.sha256(sha.encode() + json.dumps(training).encode()).hexdigest()
    log.record_guideline(db, guideline)
    stored = students.StoredStudent(
        student_id=f"{students.PREFIX}{identity[:12]}",
        guideline_hash=guideline.content_hash,
        task=guideline.task,
        labels=model.labels,
        n_train=len(train),
        include_auto=include_auto,
        training=training,
        params=params,
        params_sha256=sha,
        settings={
            "features": [[kind, list(ngrams)] for kind, ngrams in BLOCKS],
            "max_features": MAX_FEATURES,
            "C": REGULARISATION,
            "holdout": holdout,
            "kept_out": len(held),
            "kept_out_accuracy": accuracy,
            "train_seconds": round(seconds, 3),
        },
    )
    new = students.save(db, stored)
    return Trained(
        stored.student_id,
        new,
        len(train),
        sum(r.source == "auto" for r in train),
        len(held),
        accuracy,
        seconds,
        model.labels,
    )
