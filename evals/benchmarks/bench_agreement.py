"""Is GPT-4o inside the range of human disagreement? GWSD stance, through labelagent's own CLI.

    python evals/benchmarks/bench_agreement.py                # 2,300 items, 200 resamples, ~1.5 min
    python evals/benchmarks/bench_agreement.py --bootstrap 500  # eval's default resamples, ~3.5 min
    python evals/benchmarks/bench_agreement.py --bootstrap 50 --keep  # quickest; keeps the log

Data: `../shared/data/gwsd_gpt4o/items.jsonl` (`--data`; research-use, only read, never copied
into the repository): 2,300 news sentences, stance toward "climate change is a serious concern",
8 crowd workers' labels per item (slots worker_0..7), the MACE gold and GPT-4o's binary answer
with its stated confidence for 2,299 items. Everything is binary (agrees / not_agrees), because
GPT-4o's published answers are; a worker's `neutral` and `disagrees` become `not_agrees`.

1. Writes one JSONL file per annotator to a temp dir and imports it into a fresh DuckDB log
   with `labelagent import-labels` (guideline `evals/benchmarks/guidelines/gwsd_stance.md`): the
   8 worker slots and `gold` as human labels, `gpt-4o` with `--model --confidence-field confidence`.
2. `labelagent eval --reference gold --json`: every worker slot and GPT-4o vs the gold, with
   bootstrap intervals; Krippendorff's alpha among the 8 slots; the human range and whether
   GPT-4o is inside it. `--bootstrap` defaults to 200, not eval's 500: eval takes about 55 ms
   per resample and annotator here (2-2.5 min at 500). Then the default reference (majority of
   the humans, which here include the gold) at the CLI's minimum of 50 resamples, point figures.
3. `labelagent calibrate --annotator gpt-4o --reference gold --target-error 0.10
   --confidence 0.9 --json`, with `--holdout 0` (every item chooses the rule) and with the
   default `--holdout 0.2` (the rule is checked on the held-out fifth).

Caveats printed with the figures: the gold is MACE-aggregated from these same 8 workers (so
worker-vs-gold is optimistic), and a worker slot is not the same person across batches.
Figures are printed; nothing is asserted.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelagent.guidelines import load_guideline

REPO = Path(__file__).resolve().parents[2]
GUIDELINE = Path(__file__).resolve().parent / "guidelines" / "gwsd_stance.md"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "gwsd_gpt4o" / "items.jsonl"
MODEL = "gpt-4o"
WORKERS = [f"worker_{i}" for i in range(8)]
TARGET_ERROR, CONFIDENCE = 0.10, 0.9
METRICS = ("accuracy", "cohen_kappa", "gwet_ac1")
HUMANS_BOOTSTRAP = 50  # the CLI's minimum: only point figures of reference 'humans' are shown
CAVEATS = [
    "the gold is MACE-aggregated from these same 8 workers, so worker-vs-gold is optimistic",
    "worker slots are not the same people across batches (worker_0 is several workers)",
]


@dataclass
class Steps:
    """Wall time of every CLI call, in order."""

    times: list[tuple[str, float]] = field(default_factory=list)

    def run(self, title: str, *arguments: str) -> str:
        command = [sys.executable, "-m", "labelagent.cli", *arguments]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        self.times.append((title, time.perf_counter() - started))
        if done.returncode != 0:
            print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
            raise SystemExit(f"failed ({done.returncode}): labelagent {' '.join(arguments)}")
        return done.stdout

    def run_json(self, title: str, *arguments: str) -> dict[str, Any]:
        return json.loads(self.run(title, *arguments, "--json"))


# --- data -------------------------------------------------------------------------------------


def binary(label: str | None) -> str | None:
    if label is None:
        return None
    return "agrees" if label == "agrees" else "not_agrees"


def annotator_rows(items: list[dict]) -> dict[str, list[dict]]:
    """The rows to import per annotator: 8 worker slots, the gold, GPT-4o."""
    rows: dict[str, list[dict]] = {}
    for slot, name in enumerate(WORKERS):
        rows[name] = [
            {"id": item["id"], "text": item["text"], "label": binary(item["annotations"][slot])}
            for item in items
            if slot < len(item["annotations"]) and item["annotations"][slot] is not None
        ]
    rows["gold"] = [
        {"id": item["id"], "text": item["text"], "label": item["label_binary"]} for item in items
    ]
    rows[MODEL] = [
        {"id": item["id"], "label": answer["label_binary"], "confidence": answer["confidence"]}
        for item in items
        if (answer := (item.get("llm_labels") or {}).get(MODEL))
        and answer.get("label_binary") is not None
        and answer.get("confidence") is not None
    ]
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- the CLI steps ----------------------------------------------------------------------------


def import_all(steps: Steps, db: Path, folder: Path, rows: dict[str, list[dict]]) -> None:
    for name, annotator in rows.items():
        path = folder / f"{name}.jsonl"
        write_jsonl(path, annotator)
        command = ["import-labels", str(path), "--annotator", name, "--db", str(db)]
        if name == MODEL:
            command += ["--model", "--confidence-field", "confidence"]
        title = f"import-labels {name} ({len(annotator):,} rows)"
        said = steps.run(title, *command, "--guideline", str(GUIDELINE))
        print(f"  {name:9s} {said.strip()}")


def evaluate(steps: Steps, db: Path, reference: str, bootstrap: int) -> dict[str, Any]:
    command = ["eval", "--db", str(db), "--reference", reference, "--bootstrap", str(bootstrap)]
    result = steps.run_json(f"eval --reference {reference} --bootstrap {bootstrap}", *command)
    return next(g for g in result["guidelines"] if g["guideline"] == GUIDELINE.stem)


def calibrate(steps: Steps, db: Path, holdout: float) -> dict[str, Any]:
    rule = ["--target-error", str(TARGET_ERROR), "--confidence", str(CONFIDENCE)]
    command = ["calibrate", "--db", str(db), "-g", str(GUIDELINE), "--annotator", MODEL, *rule]
    command += ["--reference", "gold", "--holdout", str(holdout)]
    return steps.run_json(f"calibrate --holdout {holdout:g}", *command)


# --- report -----------------------------------------------------------------------------------


def estimate(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "-"
    if e.get("low") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def report_agreement(g: dict[str, Any]) -> None:
    agreement = g["human_agreement"] or {}
    print(
        f"\nKrippendorff's alpha among the {agreement.get('n_annotators', 0)} worker slots: "
        f"{estimate(agreement.get('krippendorff_alpha'))} on {agreement.get('n_items', 0):,} items"
        " (95% bootstrap interval)"
    )
    print(f"\nvs gold ({g['n_reference_items']:,} items), 95% bootstrap intervals:")
    print(f"  {'annotator':9s} {'n':>6s}  " + "  ".join(f"{m:24s}" for m in METRICS))
    for c in sorted(g["comparisons"], key=lambda c: (c["kind"] == "model", c["annotator"])):
        cells = "  ".join(f"{estimate(c['metrics'].get(m)):24s}" for m in METRICS)
        print(f"  {c['annotator']:9s} {c['n']:6,d}  {cells}")
    report_range(g)


def report_range(g: dict[str, Any]) -> None:
    spread = (g["human_agreement"] or {}).get("range", {})
    humans = [c for c in g["comparisons"] if c["kind"] == "human"]
    model = next((c for c in g["comparisons"] if c["annotator"] == MODEL), None)
    for key, (low, high) in spread.items():
        values = [c["metrics"][key]["value"] for c in humans]
        mean = sum(values) / len(values)
        line = f"  human range of {key}: {low:.3f} .. {high:.3f} (mean {mean:.3f})"
        if model and (own := model["metrics"][key]["value"]) is not None:
            line += f"; {MODEL} {own:.3f}, above {sum(v < own for v in values)} of {len(values)}"
        print(line)
    inside = g["inside_human_range"].get(MODEL)
    verdict = {True: "INSIDE", False: "OUTSIDE", None: "not decided"}[inside]
    print(f"  {MODEL} is {verdict} the human range (accuracy and kappa >= the lowest human's)")


def report_humans_reference(g: dict[str, Any]) -> None:
    """One summary against the default reference: the majority of the 8 slots and the gold."""
    agreement = g["human_agreement"] or {}
    alpha = (agreement.get("krippendorff_alpha") or {}).get("value")
    model = next((c for c in g["comparisons"] if c["annotator"] == MODEL), None)
    own = ", ".join(f"{m} {model['metrics'][m]['value']:.3f}" for m in METRICS[:2]) if model else ""
    spread = "; ".join(f"{k} {lo:.3f}..{hi:.3f}" for k, (lo, hi) in agreement["range"].items())
    inside = {True: "inside", False: "outside", None: "not decided"}[
        g["inside_human_range"].get(MODEL)
    ]
    print(
        f"\nreference 'humans' (eval's default: each item's strict majority of the human labels,"
        f" here the 8 slots and the gold; {g['n_reference_items']:,} items; point figures):"
    )
    print(f"  {MODEL} {own}; human range (each vs the others' majority) {spread}")
    print(f"  alpha among the {agreement['n_annotators']} humans {alpha:.3f}; {MODEL} {inside}")


def report_confidence(rows: list[dict]) -> None:
    counts = Counter(row["confidence"] for row in rows)
    print(f"\n{MODEL}'s stated confidence on {len(rows):,} items (value: items):")
    ordered = sorted(counts.items(), reverse=True)
    for start in range(0, len(ordered), 8):
        print("  " + "  ".join(f"{v:g}: {n:,}" for v, n in ordered[start : start + 8]))


def report_rule(result: dict[str, Any], values: list[float]) -> None:
    print(
        f"\nacceptance rule for {MODEL}'s labels (--holdout 0: all {result['n_calibration']:,}"
        f" items choose it), error <= {TARGET_ERROR:g} with probability {CONFIDENCE:g}"
        f" on the {result['signal']}:"
    )
    print(f"  status {result['status']}: {result['message']}")
    rule, steps = result.get("rule"), result["selection"]["steps"]
    chosen = next((s for s in steps if rule and s["threshold"] == rule["threshold"]), None)
    if chosen:
        print(
            f"  threshold {rule['threshold']:g}: accepts {chosen['accepted']:,} of"
            f" {result['n_calibration']:,} items (coverage {rule['coverage']:.1%}),"
            f" {chosen['errors']} errors ({chosen['errors'] / chosen['accepted']:.1%}),"
            f" one-sided {CONFIDENCE:g} Clopper-Pearson bound {rule['error_bound']:.4f}"
        )
    if result.get("more_reviews_needed"):
        print(f"  more reviewed items needed: about {result['more_reviews_needed']:,}")
    report_steps(steps, values)


def report_steps(steps: list[dict], values: list[float]) -> None:
    print("  tested thresholds, strictest first (cumulative: every item at or above the value):")
    print(f"    {'value':>6s} {'accepted':>9s} {'errors':>7s} {'error':>7s} {'upper':>7s}  passed")
    for s in steps:
        rate = f"{s['errors'] / s['accepted']:.3f}" if s["accepted"] else "-"
        upper = "-" if s["upper"] is None else f"{s['upper']:.4f}"
        passed = "yes" if s["passed"] else ("skipped" if s["upper"] is None else "NO")
        print(
            f"    {s['threshold']:6g} {s['accepted']:9,d} {s['errors']:7d} {rate:>7s}"
            f" {upper:>7s}  {passed}"
        )
    last = steps[-1]["threshold"] if steps else max(values, default=0.0)
    untested = sorted({v for v in values if v < last}, reverse=True)
    if untested:
        names = ", ".join(f"{v:g}" for v in untested)
        print(f"    not tested (the sequence stops at the first failure): {names}")


def report_holdout(result: dict[str, Any]) -> None:
    print(
        f"\nwith the default --holdout 0.2: {result['n_calibration']:,} items choose the rule,"
        f" {result['n_holdout']:,} held out; status {result['status']}"
    )
    print(f"  {result['message']}")
    h = result.get("holdout")
    if h:
        error = "-" if h["error"] is None else f"{h['error']:.3f}"
        print(
            f"  held-out check: {h['accepted']:,} of {h['items']:,} accepted, {h['errors']}"
            f" errors, error {error}, two-sided {CONFIDENCE:g} Clopper-Pearson interval"
            f" [{h['low']:.3f}, {h['high']:.3f}]"
        )


def report_times(steps: Steps, total: float) -> None:
    print("\nwall time of each CLI step (a subprocess each, Python start-up included):")
    for title, seconds in steps.times:
        print(f"  {title:42s} {seconds:6.1f} s")
    print(f"  {'whole benchmark':42s} {total:6.1f} s")


# --- main -------------------------------------------------------------------------------------


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Writes its temp files (the JSONL per annotator, the log) to a temp dir.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"GWSD items.jsonl (default: {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--db", type=Path, help="DuckDB log to import into (default: a file in the temp dir)"
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        help="resamples per interval of `labelagent eval --reference gold` (default 200; eval's"
        " own default 500 takes 2-2.5 min on 2 vCPUs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir; print its path")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, folder: Path) -> None:
    started = time.perf_counter()
    load_guideline(GUIDELINE)  # fails here, with the file's name, if the guideline is wrong
    items = [json.loads(line) for line in args.data.open(encoding="utf-8") if line.strip()]
    rows = annotator_rows(items)
    unlabeled = sorted({item["id"] for item in items} - {row["id"] for row in rows[MODEL]})
    db = args.db or folder / "gwsd.duckdb"
    print(f"GWSD stance, binary (agrees / not_agrees): {len(items):,} items from {args.data}")
    print(f"guideline {GUIDELINE.relative_to(REPO)}; log {db}")
    print(
        f"{MODEL}: {len(rows[MODEL]):,} items with a label and a confidence; without: {unlabeled}"
    )
    for caveat in CAVEATS:
        print(f"caveat: {caveat}")
    steps = Steps()
    import_all(steps, db, folder, rows)
    by_gold = evaluate(steps, db, "gold", args.bootstrap)
    by_humans = evaluate(steps, db, "humans", HUMANS_BOOTSTRAP)
    strict = calibrate(steps, db, 0.0)
    held = calibrate(steps, db, 0.2)
    report_agreement(by_gold)
    report_humans_reference(by_humans)
    report_confidence(rows[MODEL])
    report_rule(strict, [row["confidence"] for row in rows[MODEL]])
    report_holdout(held)
    report_times(steps, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file (see --data)")
    if args.keep:
        folder = Path(tempfile.mkdtemp(prefix="bench-agreement-"))
        run(args, folder)
        print(f"\nkept {folder}")
        return
    with tempfile.TemporaryDirectory(prefix="bench-agreement-") as name:
        run(args, Path(name))


if __name__ == "__main__":
    main()
