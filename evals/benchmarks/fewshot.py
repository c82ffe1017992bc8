"""The few-shot part of bench_teach.py: the embedded model with 0, 4 and 8 examples from a pool of
gold labels standing in for trusted reviews (see bench_teach.py's docstring)."""

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from labelagent.examples import ExamplePicker, ExampleSettings
from labelagent.guidelines import Guideline, parse_guideline
from labelagent.local_model import LocalBackend
from labelagent.records import Example, Item

POOL = 1000
INTENTS = 10
SCORING = ("calibrated_na", "raw")  # both from one pass; the content-free prior is "N/A" only
SETTINGS = {
    "0 examples": ExampleSettings(0),
    "4 similar": ExampleSettings(4, "similar"),
    "8 similar": ExampleSettings(8, "similar"),
    "8 random": ExampleSettings(8, "fixed"),
}
VOTED = "8 similar"  # its examples' own majority label is measured too: what the model adds to it
SENTIMENT_BODY = "Label the overall sentiment that the author of the tweet expresses."
INTENT_BODY = "Label what the bank's customer wants in this message."


def chosen(args: argparse.Namespace) -> list[str]:
    """The settings asked for (`--fewshot-settings`, names of SETTINGS), every one by default."""
    names = args.fewshot_settings.split(",") if args.fewshot_settings else list(SETTINGS)
    unknown = [name for name in names if name not in SETTINGS]
    if unknown or VOTED not in names:
        raise SystemExit(
            f"--fewshot-settings: use names from {list(SETTINGS)}, {VOTED!r} among them"
        )
    return names


def read(data: Path, name: str) -> list[dict[str, Any]]:
    with open(data / name / "items.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def dataset(data: Path, name: str) -> tuple[Guideline, list[dict[str, Any]]]:
    """The guideline and rows; banking77 cut to its most common intents."""
    rows = read(data, name)
    if name == "banking77":
        counts = Counter(r["label"] for r in rows)
        kept = sorted(counts, key=lambda x: (-counts[x], x))[:INTENTS]
        rows = [r for r in rows if r["label"] in kept]
        body = INTENT_BODY
    else:
        body = SENTIMENT_BODY
    labels = "".join(f"  {x}: {x.replace('_', ' ')}\n" for x in sorted({r["label"] for r in rows}))
    head = f"---\nname: {name}\ntask: classification\nlabels:\n{labels}"
    return parse_guideline(f"{head}fields: [text]\n---\n{body}\n"), rows


def pool_size(rows: list[dict[str, Any]], test_items: int) -> int:
    """POOL items, or fewer when the data would leave fewer than `test_items` to label (banking77's
    10 intents have about 400 items)."""
    return max(0, min(POOL, len(rows) - test_items))


def as_example(row: dict[str, Any]) -> Example:
    return Example(item=Item(item_id=row["id"], fields={"text": row["text"]}), label=row["label"])


def predictions(backend: LocalBackend, g: Guideline, item: Item, shown: list[Example]) -> dict:
    scores, _ = backend.score(g, item, shown)
    question = scores.questions["label"]
    best = {}
    for method in SCORING:
        probs = question.probabilities(method)
        best[method] = question.options[probs.index(max(probs))]
    return best


def run(args: argparse.Namespace, name: str, backend: LocalBackend) -> None:
    g, rows = dataset(args.data, name)
    random.Random(args.seed).shuffle(rows)
    size = pool_size(rows, args.test_items)
    pool, test = rows[:size], rows[size : size + args.test_items]
    examples = [as_example(r) for r in pool]
    pickers = {k: ExamplePicker(g, examples, SETTINGS[k]) for k in chosen(args)}
    done = {(r["dataset"], r["id"]) for r in _results(args.out)}
    with open(args.out, "a", encoding="utf-8") as out:
        for row in test:
            if (name, row["id"]) in done:
                continue
            item = Item(item_id=row["id"], fields={"text": row["text"]})
            result: dict[str, Any] = {"dataset": name, "id": row["id"], "gold": row["label"]}
            for setting, picker in pickers.items():
                started = time.perf_counter()
                shown = picker.for_item(item) if picker.settings.n else []
                result[setting] = predictions(backend, g, item, shown)
                result[setting]["seconds"] = time.perf_counter() - started
                if setting == VOTED:
                    result["vote"] = Counter(e.label for e in shown).most_common(1)[0][0]
            out.write(json.dumps(result) + "\n")
            out.flush()
    majority = Counter(r["label"] for r in pool).most_common(1)[0][0]
    print(f"{name}: pool {len(pool)}, majority class {majority!r}, {len(g.labels)} labels")


def _results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Accuracy per dataset and setting on the items every setting labeled."""
    table = []
    for name in ("tweeteval_sentiment", "banking77"):
        done = [r for r in _results(args.out) if r["dataset"] == name]
        if not done:
            continue
        _, rows = dataset(args.data, name)
        random.Random(args.seed).shuffle(rows)
        size = pool_size(rows, args.test_items)
        majority = Counter(r["label"] for r in rows[:size]).most_common(1)[0][0]
        line: dict[str, Any] = {"dataset": name, "items": len(done), "pool": size}
        line["settings"] = chosen(args)
        line["majority class"] = sum(r["gold"] == majority for r in done) / len(done)
        line["vote"] = sum(r.get("vote") == r["gold"] for r in done) / len(done)
        for setting in chosen(args):
            for method in SCORING:
                hits = sum(r[setting][method] == r["gold"] for r in done)
                line[f"{setting} ({method})"] = hits / len(done)
            line[f"{setting} s/item"] = sum(r[setting]["seconds"] for r in done) / len(done)
        table.append(line)
    return table


def show(table: list[dict[str, Any]]) -> None:
    for line in table:
        where = f"{line['items']} test items, none in the pool of {line['pool']}"
        print(f"\n{line['dataset']}: {where}")
        print(f"  {'majority class':<32} {line['majority class']:>6.1%}")
        vote = f"majority label of the {VOTED} examples (no model)"
        print(f"  {vote:<32} {line['vote']:>6.1%}")
        for setting in line["settings"]:
            cells = "  ".join(f"{m} {line[f'{setting} ({m})']:>6.1%}" for m in SCORING)
            print(f"  {setting:<32} {cells}   {line[f'{setting} s/item']:.1f} s/item")
        gain = line["8 similar (calibrated_na)"] - line["majority class"]
        verdict = "PASS" if gain >= 0.10 else "FAIL"
        print(f"  goal: 8 similar beats the majority class by >= 10 points: {gain:+.1%} {verdict}")


def main(args: argparse.Namespace) -> None:
    backend = LocalBackend(scoring="calibrated_na")
    backend.load()
    for name in args.datasets.split(","):
        run(args, name, backend)
    table = summary(args)
    show(table)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
