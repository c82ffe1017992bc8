"""`labelagent demo`: the whole loop, offline, on customer messages bundled with the package:
label, route, bring in the dataset's own labels for half the items as an independent human
reference, so `labelagent eval` and `labelagent calibrate` have something to measure."""

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from labelagent.backends import make_backend
from labelagent.calibration.rule import thresholds_for
from labelagent.guidelines import Guideline, load_guideline
from labelagent.importing import import_labels
from labelagent.paths import DEMO_DATA, resource_dir
from labelagent.pipeline import Labeler, RunSettings
from labelagent.status import status

DEMO_ITEMS = DEMO_DATA / "card_support_sample.jsonl"


def run_demo(db: str | Path, n_items: int, progress_bar: Callable, out: Console) -> None:
    guideline_path = resource_dir("guidelines") / "card_support.md"
    guideline = load_guideline(guideline_path)
    backend = make_backend(None)
    out.print(
        f"Labeling {n_items} bundled customer messages with the embedded model ({backend.name}), "
        f"guideline {guideline_path.name}, 5 samples per item, log in {db}."
    )
    thresholds = thresholds_for(db, guideline.content_hash, backend.name)
    settings = RunSettings(samples=5, limit=n_items)
    with progress_bar() as bar:
        task = bar.add_task("demo", total=n_items, cost="")
        labeler = Labeler(
            db,
            guideline,
            [backend],
            settings,
            thresholds,
            concurrency=2,
            on_progress=lambda p: bar.update(
                task, completed=p.done + p.skipped, cost=f"auto {p.auto} · review {p.escalated}"
            ),
        )
        progress = labeler.run(DEMO_ITEMS)
    imported = import_reference(db, guideline, n_items)
    summary = status(db)
    mine = next(g for g in summary.guidelines if g.guideline_hash == guideline.content_hash)
    out.print(
        f"\nDone: {progress.done} labeled now, {progress.skipped} already decided. In {db}: "
        f"{mine.auto} auto-accepted, {mine.escalated} escalated for review "
        f"({', '.join(f'{k} {v}' for k, v in mine.escalation_reasons.items()) or 'none'})."
        f" The dataset's own labels of {imported} items went in as annotator {REFERENCE!r}."
    )
    out.print(
        "The embedded model is a 270M base model: it proves the offline loop, not label quality "
        "(see README).\nNext:\n"
        f"  labelagent status --db {db}\n"
        f"  labelagent export --db {db} --out labels.jsonl\n"
        f"  labelagent eval --db {db} --html report.html     # the model vs {REFERENCE!r}\n"
        f"  labelagent calibrate --db {db} --target-error 0.2  # a threshold with a guarantee\n"
        f"  duckdb {db} \"SELECT item_id, label, reasons FROM decisions WHERE route = 'escalated'\""
    )


REFERENCE = "banking77"


def import_reference(db: str | Path, guideline: Guideline, n_items: int) -> int:
    """Every second of the labeled items, with BANKING77's own label, as a blind import."""
    with DEMO_ITEMS.open(encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(n_items), f, strict=False)][::2]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "banking77_labels.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        import_labels(db, path, REFERENCE, guideline)
    return len(rows)
