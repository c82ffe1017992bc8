"""Benchmark the embedded local model's likelihood scoring on a labelled classification file.

    python evals/benchmarks/bench_local_model.py \
        --data ../shared/data/tweeteval_sentiment/items.jsonl --n 150

Items: the first N after sorting by id (deterministic). Each item is scored once; every scoring
variant (raw sum, length-normalised, contextual calibration with "N/A" only or with three
content-free inputs) is computed from that one pass, so the seconds per item are shared. The
calibrated variants also pay a one-time content-free pass per guideline, included in the first
item's time.
"""

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from labelagent.guidelines import Guideline, load_guideline, parse_guideline
from labelagent.local_model import SCORING_METHODS, LocalBackend
from labelagent.records import Item

REPO = Path(__file__).resolve().parents[2]
SENTIMENT = """---
name: sentiment
task: classification
labels:
  positive: The author expresses a favourable attitude, feeling or opinion.
  negative: The author expresses an unfavourable attitude, feeling or opinion.
  neutral: No clear attitude either way, or a factual statement.
fields: [text]
---
Label the overall sentiment that the author of the tweet expresses.
"""


def main() -> None:
    args = _arguments()
    guideline = _guideline(args.guideline)
    rows = _rows(args.data, args.n, args.label_field)
    backend = LocalBackend(n_ctx=args.n_ctx, n_threads=args.threads, scoring="calibrated")
    started = time.perf_counter()
    backend.load()
    print(f"model {backend.name}: loaded in {time.perf_counter() - started:.1f}s")
    print(f"guideline: {guideline.path} ({len(guideline.body)} characters of body)")
    predictions, seconds = _score(backend, guideline, rows)
    gold = [row[args.label_field] for row in rows]
    _report(guideline, gold, predictions, seconds)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="JSONL: id, fields, label")
    parser.add_argument("--n", type=int, default=150, help="items: the first N sorted by id")
    parser.add_argument("--guideline", help="guideline file (default: guidelines/sentiment.md)")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args()


def _guideline(path: str | None) -> Guideline:
    if path:
        return load_guideline(path)
    bundled = REPO / "guidelines" / "sentiment.md"
    if bundled.is_file():
        return load_guideline(bundled)
    return parse_guideline(SENTIMENT, "<inline sentiment guideline>")


def _rows(path: str, n: int, label_field: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [row for row in rows if row.get(label_field) is not None]
    return sorted(rows, key=lambda row: str(row["id"]))[:n]


def _score(
    backend: LocalBackend, guideline: Guideline, rows: list[dict]
) -> tuple[dict[str, list[str]], list[float]]:
    predictions: dict[str, list[str]] = {method: [] for method in SCORING_METHODS}
    seconds = []
    for i, row in enumerate(rows, 1):
        item = Item(item_id=str(row["id"]), fields=row)
        started = time.perf_counter()
        scores, _ = backend.score(guideline, item)
        seconds.append(time.perf_counter() - started)
        question = scores.questions["label"]
        for method in SCORING_METHODS:
            probs = question.probabilities(method)
            predictions[method].append(question.options[probs.index(max(probs))])
        if i % 50 == 0:
            print(f"  scored {i}/{len(rows)}", file=sys.stderr)
    return predictions, seconds


def _report(
    guideline: Guideline, gold: list[str], predictions: dict[str, list[str]], seconds: list[float]
) -> None:
    counts = Counter(gold)
    majority, majority_n = counts.most_common(1)[0]
    per_item = statistics.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]
    print(f"items: {len(gold)} (first N by id); gold: {dict(counts)}")
    print(f"majority-class baseline ({majority}): {majority_n / len(gold):.1%}")
    print(
        f"seconds per item: mean {per_item:.3f}, median {statistics.median(seconds):.3f} "
        f"(first item, with the one-time content-free pass: {seconds[0]:.2f}s)"
    )
    labels = guideline.label_names
    header = "".join(f"{'R(' + label + ')':>14}" for label in labels)
    print(f"{'variant':<15}{'accuracy':>9}{'macro-R':>9}{header}  predicted")
    for method, predicted in predictions.items():
        recalls = [_recall(gold, predicted, label) for label in labels]
        accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)
        cells = "".join(f"{r:>14.1%}" for r in recalls)
        shown = dict(Counter(predicted))
        print(f"{method:<15}{accuracy:>9.1%}{statistics.mean(recalls):>9.1%}{cells}  {shown}")


def _recall(gold: list[str], predicted: list[str], label: str) -> float:
    hits = [p == label for g, p in zip(gold, predicted, strict=True) if g == label]
    return sum(hits) / len(hits) if hits else float("nan")


if __name__ == "__main__":
    main()
