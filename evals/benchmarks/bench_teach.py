"""What a student model is worth: trained on N trusted labels, how many of the remaining items it
labels, and how often its guarantee breaks.

    python evals/benchmarks/bench_teach.py --data ../shared/data  # every figure, ~20 min on 2 cores
    python evals/benchmarks/bench_teach.py --datasets banking77 --sizes 1000 --splits 50    # ~1 min

Gold labels stand in for trusted reviews. For each dataset of `../shared/data` (read only, never
copied) and each N: a fixed random N items train the student (`labelagent.student.fit`, exactly what
`labelagent student train` fits); every figure is on the other items, whose labels it never saw.

- accuracy: its most probable label against gold, on all the other items;
- coverage at E with C = 0.9: `--splits` random halvings of the other items; the gold labels of
  one half calibrate with labelagent's rule (`labelagent.calibration.learn.select_threshold`: fixed
  sequence, Clopper-Pearson; the score is the student's probability, which is its support), the
  other half is labeled: coverage is the share of it the rule accepts, `exceed` the share of
  splits whose realized error there is above E (target at most 1 - C = 10%). Both guarantees:
  `population` (calibrate's default) and `dataset` (the bound on the labeled half itself, the
  claim this check measures);
- throughput: scoring items in one batch and one at a time (as `label --model student` asks),
  and `label --model student` end to end (the pipeline and its DuckDB log) on one dataset;
- training seconds, and at 10,000 labels (tweeteval_sentiment and davidson_hate_offensive
  together, 6 labels).

Preference (`hh_rlhf_harmless`) gets the same figures, to say what the pair features are worth.
Nothing is asserted; the goal is printed with PASS/FAIL.

Few-shot on the embedded model (`--fewshot`, slow: seconds per item and setting on 2 cores):

    python evals/benchmarks/bench_teach.py --fewshot --test-items 60 --json fewshot.json

For tweeteval_sentiment and a 10-intent subset of banking77 (its 10 most common intents), a
seeded 1,000 gold-labeled items are the pool of trusted labels; the next `--test-items` are
labeled, none of them in the pool. Each test item is scored (`LocalBackend.score`, what `label
--model local --examples N` runs) with 0, 4 and 8 similar examples (`labelagent.examples`, TF-IDF)
and with 8 random ones (the `fixed` selector), against the pool's majority class and against the
majority label of the 8 similar examples themselves (no model: what the retrieval alone gives).
Items go one at a time through every setting, and each result is appended to `--out` as it
comes, so a run cut short still gives every setting on the same items.
"""

import argparse
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelagent.calibration.learn import Example, select_threshold
from labelagent.evals.benchmarks import fewshot
from labelagent.guidelines import Guideline, parse_guideline
from labelagent.student import StudentModel, fit

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CLASSIFICATION = ["banking77", "clinc150_oos", "davidson_hate_offensive", "tweeteval_sentiment"]
PREFERENCE = "hh_rlhf_harmless"
CONFIDENCE = 0.9
TARGETS = (0.05, 0.10)
GUARANTEES = ("population", "dataset")
MIN_REST = 200  # items left to calibrate on and measure


def read(data: Path, name: str) -> list[dict[str, Any]]:
    with open(data / name / "items.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def guideline_for(rows: list[dict[str, Any]], preference: bool) -> Guideline:
    """A guideline with the data's labels (the student reads the labels and fields only)."""
    if preference:
        head = "task: preference\nlabels: {A: A is better., B: B is better.}\n"
        fields = "fields: [prompt, response_a, response_b]\n"
    else:
        labels = sorted({r["label"] for r in rows})
        head = "task: classification\nlabels:\n" + "".join(f"  {x}: {x}\n" for x in labels)
        fields = "fields: [text]\n"
    return parse_guideline(f"---\nname: bench\n{head}{fields}---\nBenchmark.\n")


def fields_of(row: dict[str, Any], preference: bool) -> dict[str, Any]:
    keys = ("prompt", "response_a", "response_b") if preference else ("text",)
    return {k: row[k] for k in keys}


@dataclass
class Scored:
    scores: np.ndarray  # the student's probability of its label
    correct: np.ndarray


def coverage_runs(scored: Scored, target: float, guarantee: str, splits: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = len(scored.scores)
    coverages, exceeded, thresholds = [], 0, []
    for _ in range(splits):
        order = rng.permutation(n)
        cal, measure = order[: n // 2], order[n // 2 :]
        examples = [Example(str(i), float(scored.scores[i]), bool(scored.correct[i])) for i in cal]
        unreviewed = scored.scores[measure].tolist() if guarantee == "dataset" else None
        chosen = select_threshold(examples, target, CONFIDENCE, unreviewed).threshold
        if chosen is None:
            coverages.append(0.0)
            continue
        accepted = measure[scored.scores[measure] >= chosen]
        coverages.append(len(accepted) / len(measure))
        thresholds.append(chosen)
        if len(accepted) and 1 - scored.correct[accepted].mean() > target:
            exceeded += 1
    return {
        "coverage": statistics.fmean(coverages),
        "exceed": exceeded / splits,
        "threshold": statistics.median(thresholds) if thresholds else None,
    }


def one_at_a_time(model: StudentModel, items: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for item in items:
        model.probabilities([item])
    return len(items) / (time.perf_counter() - started)


def evaluate(name: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    preference = name == PREFERENCE
    rows = read(args.data, name)
    random.Random(args.seed).shuffle(rows)
    train, rest = rows[:size], rows[size:]
    guideline = guideline_for(rows, preference)
    started = time.perf_counter()
    model = fit(guideline, [fields_of(r, preference) for r in train], [r["label"] for r in train])
    train_seconds = time.perf_counter() - started
    items = [fields_of(r, preference) for r in rest]
    started = time.perf_counter()
    probs = model.probabilities(items)
    batch_rate = len(items) / (time.perf_counter() - started)
    best = probs.argmax(axis=1)
    scored = Scored(
        probs.max(axis=1),
        np.array([model.labels[b] == r["label"] for b, r in zip(best, rest, strict=True)]),
    )
    result = {
        "dataset": name,
        "train": size,
        "rest": len(rest),
        "labels": len(model.labels),
        "accuracy": float(scored.correct.mean()),
        "train_seconds": train_seconds,
        "batch_items_per_second": batch_rate,
        "single_items_per_second": one_at_a_time(model, items[:500]),
    }
    for target in TARGETS:
        for guarantee in GUARANTEES:
            found = coverage_runs(scored, target, guarantee, args.splits, args.seed)
            result[f"{guarantee}@{target:g}"] = found
    return result


def ten_thousand(args: argparse.Namespace) -> dict[str, Any]:
    rows = read(args.data, "tweeteval_sentiment") + read(args.data, "davidson_hate_offensive")
    random.Random(args.seed).shuffle(rows)
    guideline = guideline_for(rows, False)
    started = time.perf_counter()
    fit(guideline, [{"text": r["text"]} for r in rows], [r["label"] for r in rows])
    return {"items": len(rows), "labels": 6, "train_seconds": time.perf_counter() - started}


def pipeline_rate(args: argparse.Namespace) -> dict[str, Any]:
    """`labelagent student train` and `label --model student` through the real code and log."""
    from labelagent.backends import make_backend
    from labelagent.calibration.rule import thresholds_for
    from labelagent.guidelines import load_guideline
    from labelagent.importing import import_labels
    from labelagent.pipeline import Labeler, RunSettings
    from labelagent.student_train import train_student

    rows = read(args.data, "banking77")
    random.Random(args.seed).shuffle(rows)
    guideline = load_guideline(Path(__file__).resolve().parents[2] / "guidelines" / "intent.md")
    with tempfile.TemporaryDirectory() as tmp:
        db, gold, items = Path(tmp) / "log.duckdb", Path(tmp) / "gold.jsonl", Path(tmp) / "i.jsonl"
        gold.write_text("".join(json.dumps(r) + "\n" for r in rows[:1000]), encoding="utf-8")
        items.write_text(
            "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows[1000:]),
            encoding="utf-8",
        )
        import_labels(db, gold, "gold", guideline)
        started = time.perf_counter()
        trained = train_student(db, guideline, holdout=0.0)
        train_seconds = time.perf_counter() - started
        backend = make_backend("student", db=db, guideline=guideline)
        thresholds = thresholds_for(db, guideline.content_hash, backend.name)
        started = time.perf_counter()
        progress = Labeler(db, guideline, [backend], RunSettings(), thresholds).run(items)
        seconds = time.perf_counter() - started
    return {
        "train_cli_seconds": train_seconds,
        "n_train": trained.n_train,
        "labeled": progress.done,
        "samples": progress.requests_samples,
        "items_per_second": progress.done / seconds,
    }


def show(results: list[dict[str, Any]]) -> None:
    print(
        f"{'dataset':<24} {'N':>5} {'rest':>5} {'acc':>6}  "
        + "  ".join(f"{g[:3]}@{t:g} cov/exceed" for t in TARGETS for g in GUARANTEES)
        + "   train s"
    )
    for r in results:
        cells = []
        for target in TARGETS:
            for guarantee in GUARANTEES:
                f = r[f"{guarantee}@{target:g}"]
                cells.append(f"{f['coverage']:>10.1%} / {f['exceed']:>5.1%}")
        print(
            f"{r['dataset']:<24} {r['train']:>5} {r['rest']:>5} {r['accuracy']:>6.1%}  "
            + "  ".join(cells)
            + f"   {r['train_seconds']:>7.1f}"
        )


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    add("--datasets", default=",".join([*CLASSIFICATION, PREFERENCE]))
    add("--sizes", default="250,1000,2500")
    add("--splits", type=int, default=200, help="random calibration/evaluation halvings")
    add("--seed", type=int, default=0)
    add("--json", type=Path, help="also write every figure here")
    add("--skip-extras", action="store_true", help="no 10,000-label and pipeline timing")
    add("--fewshot", action="store_true", help="the embedded model with examples instead")
    add("--test-items", type=int, default=60, help="few-shot: items labeled per dataset")
    add("--out", type=Path, default=Path("fewshot_items.jsonl"), help="few-shot: per item")
    add("--fewshot-settings", help="few-shot: comma-separated settings (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    if args.fewshot:
        fewshot.main(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for name in args.datasets.split(","):
        available = len(read(args.data, name))
        for size in sizes:
            if available - size < MIN_REST:
                print(f"  {name} N={size}: skipped, {available:,} items leave too few to measure")
                continue
            results.append(evaluate(name, size, args))
            r = results[-1]
            print(
                f"  {name} N={size}: accuracy {r['accuracy']:.3f}, trained in "
                f"{r['train_seconds']:.1f} s, scoring {r['batch_items_per_second']:.0f} items/s"
                f" in a batch, {r['single_items_per_second']:.0f} one at a time",
                flush=True,
            )
    print(
        f"\ncoverage of the evaluated half / share of {args.splits} splits with error above E"
        f" (C = {CONFIDENCE}):"
    )
    show(results)
    goal = next((r for r in results if r["dataset"] == "banking77" and r["train"] == 1000), None)
    if goal:
        cov = goal["population@0.1"]["coverage"]
        verdict = "PASS" if cov >= 0.30 else "FAIL"
        print(
            f"goal: banking77, 1,000 labels, E=0.10: coverage {cov:.1%} (target >= 30%) {verdict}"
        )
    extras: dict[str, Any] = {}
    if not args.skip_extras:
        extras["ten_thousand"] = ten_thousand(args)
        print(
            f"training on {extras['ten_thousand']['items']:,} labels (tweeteval_sentiment +"
            f" davidson, 6 labels): {extras['ten_thousand']['train_seconds']:.1f} s"
        )
        extras["pipeline"] = pipeline_rate(args)
        p = extras["pipeline"]
        print(
            f"banking77 through the log: student train on {p['n_train']} labels"
            f" {p['train_cli_seconds']:.1f} s; label --model student: {p['labeled']} items,"
            f" {p['samples']} samples, {p['items_per_second']:.0f} items/s"
        )
    if args.json:
        args.json.write_text(json.dumps({"results": results, **extras}, indent=1))


if __name__ == "__main__":
    main()
