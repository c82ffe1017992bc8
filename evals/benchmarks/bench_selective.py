"""Selective labeling with a guarantee: real LLM judges replayed, half the human labels calibrate.

    python evals/benchmarks/bench_selective.py                    # 4 replays x 250 splits, ~2-5 min
    python evals/benchmarks/bench_selective.py --replays 1 --splits 100 --keep  # ~1 min, keeps logs

On `../shared/data/arena_judges/items.jsonl` (`--data`; 500 pairwise preferences with a human
label and the probabilities three real LLM judges gave to A and B; read only, never copied):

1. `python -m labelagent.simserver` runs as a separate process on 127.0.0.1 with a gold file whose
   rows carry each judge's recorded probabilities, so a request for `openai/gpt-4-turbo` samples
   its vote from gpt-4-turbo's own (p_a, p_b).
2. labelagent's real path (`Labeler` + `make_backend`, a fresh DuckDB log) labels all items with
   `guidelines/preference.md`, model `openai/gpt-4-turbo`, jury `openai/gpt-3.5-turbo` and
   `openai/mistral-7b-instruct`, fixed K=5 per judge (no early stopping). This is repeated
   `--replays` times with other server seeds and `audit_seed`s, so the votes differ.
3. For every replay, `--splits` random halves: the human labels of one half calibrate an
   acceptance rule (`labelagent.calibration.learn.calibrate`: fixed-sequence tests, Clopper-Pearson
   bounds, confidence C=0.9, no holdout); the other half measures the share it auto-accepts and
   the realized error among those. Three rules, on the very same splits:
   (a)  gpt-4-turbo alone, its K=5 vote share of its own majority;
   (a') gpt-4-turbo alone, its exact recorded probability max(p_a, p_b);
   (b)  labelagent's rule: the jury decision's support (the mean, over all 15 votes, of the
        probability each gives the decided label; `labelagent.consistency.support`), read from the
        log as `labelagent calibrate` reads it;
   (b) dataset: the same with `--guarantee dataset`, whose bound is on the evaluated half itself
        (the unreviewed items of the log), the claim this benchmark's error test checks;
   (b') dataset: the jury decision's agreement (the share of the 15 votes for it), with
        `--guarantee dataset`: the score calibrate used before support.
   On the first split of the first replay the real CLI does (b) and (b) dataset too
   (`labelagent import-labels` of the reviewed half's human labels, then `labelagent calibrate
   --holdout 0 --json`, with and without `--guarantee dataset`), and its thresholds are checked
   against the library's.

Figures are printed with PASS/FAIL beside each target for (b); nothing is asserted.
The calibration uses the library's skip rule: levels too small to pass with an observed error
of half the target are not tested.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import duckdb

from labelagent.calibration.learn import Example, calibrate
from labelagent.evals.benchmarks.bench_throughput import sim_server
from labelagent.store.readback import drafts_in_order

REPO = Path(__file__).resolve().parents[2]
GUIDELINE = REPO / "guidelines" / "preference.md"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "arena_judges" / "items.jsonl"
JUDGES = ("gpt-4-turbo", "gpt-3.5-turbo", "mistral-7b-instruct")
MAIN = f"openai/{JUDGES[0]}"
FIELDS = ("prompt", "response_a", "response_b")
TARGET_ERRORS = (0.15, 0.20)
CONFIDENCE = 0.9
TARGET_COVERAGE = {0.15: 0.35, 0.20: 0.75}  # for (b)
TARGET_OVER_SHARE = 0.10  # for (b): realized error above E in at most this share of splits
REFERENCE = {"(a)": {0.15: 0.08, 0.20: 0.21}, "(a')": {0.15: 0.27, 0.20: 0.64}}  # the issue's
METHODS = {
    "(a)": "gpt-4-turbo, K=5 vote share",
    "(a')": "gpt-4-turbo, recorded max(p_a, p_b)",
    "(b)": "jury 3x5 votes, support (labelagent calibrate's default)",
    "(b) dataset": "the same, with --guarantee dataset (a bound on the evaluated half itself)",
    "(b') dataset": "jury 3x5 votes, agreement, with --guarantee dataset",
}
SIGNALS = {"(a)": "vote_share", "(a')": "probability", "(b)": "support"}
SIGNALS |= {"(b) dataset": "support", "(b') dataset": "agreement"}

Scored = dict[str, tuple[str, float]]  # item -> (label, score)


# --- data ---------------------------------------------------------------------------------------


def load_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def write_inputs(rows: list[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    """items.jsonl (id and the guideline's fields; no label) and gold.jsonl (id, human label,
    each judge's recorded probabilities) for the server."""
    items, gold = folder / "items.jsonl", folder / "gold.jsonl"
    with items.open("w", encoding="utf-8") as out:
        for row in rows:
            item = {"id": row["id"], **{name: row[name] for name in FIELDS}}
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    with gold.open("w", encoding="utf-8") as out:
        for row in rows:
            judged = row["llm_judgments"]
            probs = {m: {"A": judged[m]["p_a"], "B": judged[m]["p_b"]} for m in JUDGES}
            out.write(json.dumps({"id": row["id"], "label": row["label"], "probs": probs}) + "\n")
    return items, gold


def recorded(rows: list[dict[str, Any]], judge: str) -> Scored:
    """A judge's argmax label and max(p_a, p_b) per item, from the recorded probabilities."""
    out = {}
    for row in rows:
        p = row["llm_judgments"][judge]
        out[row["id"]] = ("A", p["p_a"]) if p["p_a"] >= p["p_b"] else ("B", p["p_b"])
    return out


# --- labelagent's real path -------------------------------------------------------------------


@dataclass
class Replay:
    """One labelling run: per item the jury decision and every judge's K votes."""

    seed: int
    db: Path
    wall: float = 0.0
    samples: int = 0
    requests: int = 0
    failed: int = 0
    decisions: Scored = field(default_factory=dict)  # the jury decision and its support
    agreement: Scored = field(default_factory=dict)  # the jury decision and its agreement
    votes: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # model -> item -> votes


def run_labeler(
    url: str, items: Path, db: Path, samples: int, seed: int, concurrency: int
) -> tuple[Any, int]:
    """All items through `Labeler` with the judge and its jury, fixed K, as `labelagent label`
    does it; returns the run's progress and the HTTP requests sent."""
    from labelagent.backends import make_backend
    from labelagent.calibration.rule import Thresholds
    from labelagent.guidelines import load_guideline
    from labelagent.pipeline import Labeler, RunSettings

    models = [f"openai/{judge}" for judge in JUDGES]
    backends = [
        make_backend(m, url, api_key="sk-sim", concurrency=concurrency, timeout=60.0)
        for m in models
    ]
    settings = RunSettings(samples=samples, early_stop=False, audit_seed=seed)
    labeler = Labeler(
        db,
        load_guideline(GUIDELINE),
        backends,
        settings,
        Thresholds(),
        concurrency=concurrency * len(backends),
    )
    progress = labeler.run(items)
    return progress, sum(b.requests for b in backends)


def read_replay(replay: Replay) -> None:
    """The decisions' label, support and agreement as calibrate reads them, and every judge's
    votes, from the replay's log."""
    from labelagent.guidelines import load_guideline
    from labelagent.store.annotations import load

    decisions = load(replay.db, load_guideline(GUIDELINE).content_hash).by_item(MAIN)
    for item_id, a in decisions.items():
        replay.decisions[item_id] = (json.loads(a.label), a.signals["support"])
        replay.agreement[item_id] = (json.loads(a.label), a.signals["agreement"])
    con = duckdb.connect(str(replay.db), read_only=True)
    try:
        drafts = drafts_in_order(con)
    finally:
        con.close()
    for draft in drafts:
        if draft.error is not None or draft.label is None:
            replay.failed += 1
            continue
        votes = replay.votes.setdefault(draft.model, {}).setdefault(draft.item_id, [])
        votes.append(json.loads(draft.label))


def labelled_replays(
    args: argparse.Namespace, items: Path, gold: Path, folder: Path
) -> list[Replay]:
    replays = []
    for index in range(args.replays):
        seed = args.seed + index
        replay = Replay(seed, folder / f"replay-{index}.duckdb")
        with sim_server(gold, 0.0, 1.0, seed) as server:
            started = time.perf_counter()
            progress, replay.requests = run_labeler(
                server.url, items, replay.db, args.samples, seed, args.concurrency
            )
            replay.wall = time.perf_counter() - started
        replay.samples = progress.requests_samples
        read_replay(replay)
        print(
            f"   replay {index}: server seed {seed}, audit_seed {seed}: {progress.done} items, "
            f"{replay.requests} requests, {replay.samples} samples, {replay.failed} failed, "
            f"wall {replay.wall:.1f} s"
        )
        replays.append(replay)
    return replays


def vote_share(votes: dict[str, list[str]]) -> Scored:
    """Per item the majority of a judge's votes and the share of votes it got (ties: A)."""
    out = {}
    for item_id, labels in votes.items():
        counts = Counter(labels)
        top = max(sorted(counts), key=lambda label: counts[label])
        out[item_id] = (top, counts[top] / len(labels))
    return out


# --- splits -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One rule on one split: the threshold (None: no rule), realized coverage and error on the
    evaluation half; the rule's error on all items (the finite population the reviewed half was
    drawn from, which is what the guarantee is about); and the oracle: the largest coverage any
    threshold reaches on the evaluation half with error at most E (chosen in hindsight)."""

    threshold: float | None
    coverage: float
    error: float
    accepted: int
    wrong: int
    population_error: float = 0.0
    oracle: float = 0.0
    replay: int = 0


def library_threshold(
    scored: Scored,
    human: dict[str, str],
    reviewed: Sequence[str],
    target: float,
    signal: str,
    unreviewed: list[float] | None = None,
) -> float | None:
    examples = [Example(i, scored[i][1], scored[i][0] == human[i]) for i in reviewed]
    rule = calibrate(examples, target, CONFIDENCE, signal, 0, 0, unreviewed).rule
    return None if rule is None else rule["threshold"]


def realized(
    scored: Scored, human: dict[str, str], held: Sequence[str], threshold: float | None
) -> Outcome:
    if threshold is None:
        return Outcome(None, 0.0, 0.0, 0, 0)
    accepted = [i for i in held if scored[i][1] >= threshold]
    wrong = sum(scored[i][0] != human[i] for i in accepted)
    error = wrong / len(accepted) if accepted else 0.0
    return Outcome(threshold, len(accepted) / len(held), error, len(accepted), wrong)


def oracle_coverage(
    scored: Scored, human: dict[str, str], held: Sequence[str], target: float
) -> float:
    """The largest share of `held` a threshold accepts with realized error at most `target`."""
    best, wrong = 0, 0
    ranked = sorted(held, key=lambda i: scored[i][1], reverse=True)
    for accepted, item_id in enumerate(ranked, start=1):
        wrong += scored[item_id][0] != human[item_id]
        tie_ends = accepted == len(ranked) or scored[ranked[accepted]][1] < scored[item_id][1]
        if tie_ends and wrong <= target * accepted:
            best = accepted
    return best / len(held)


def halves(ids: Sequence[str], seed: str) -> tuple[list[str], list[str]]:
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    middle = len(shuffled) // 2
    return shuffled[:middle], shuffled[middle:]


def method_scores(replay: Replay, probability: Scored) -> dict[str, Scored]:
    return {
        "(a)": vote_share(replay.votes.get(MAIN, {})),
        "(a')": probability,
        "(b)": replay.decisions,
        "(b) dataset": replay.decisions,
        "(b') dataset": replay.agreement,
    }


def run_splits(
    replays: list[Replay], probability: Scored, human: dict[str, str], args: argparse.Namespace
) -> tuple[dict[tuple[str, float], list[Outcome]], tuple[list[str], list[str]]]:
    outcomes: dict[tuple[str, float], list[Outcome]] = {}
    first: tuple[list[str], list[str]] = ([], [])
    for r, replay in enumerate(replays):
        scores = method_scores(replay, probability)
        ids = sorted(set(human).intersection(*(set(s) for s in scores.values())))
        for s in range(args.splits):
            reviewed, held = halves(ids, f"{args.seed}|{r}|{s}")
            if r == 0 and s == 0:
                first = (reviewed, held)
            for method, scored in scores.items():
                for target in TARGET_ERRORS:
                    unreviewed = (
                        [scored[i][1] for i in held] if method.endswith("dataset") else None
                    )
                    threshold = library_threshold(
                        scored, human, reviewed, target, SIGNALS[method], unreviewed
                    )
                    outcome = realized(scored, human, held, threshold)
                    outcome.population_error = realized(scored, human, ids, threshold).error
                    outcome.oracle = oracle_coverage(scored, human, held, target)
                    outcome.replay = r
                    outcomes.setdefault((method, target), []).append(outcome)
    return outcomes, first


# --- the CLI on one split ---------------------------------------------------------------------


def cli(*args: str) -> str:
    env = {**os.environ, "OPENAI_API_KEY": "sk-sim", "COLUMNS": "200"}
    command = [sys.executable, "-m", "labelagent.cli", *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def cli_check(
    replay: Replay, human: dict[str, str], reviewed: list[str], folder: Path
) -> list[tuple[str, float, float | None, float | None, str]]:
    """Import the reviewed half's human labels into the replay's log and calibrate with the
    CLI; returns per guarantee and E the CLI's threshold, the library's, and the CLI's status."""
    labels = folder / "reviewed-humans.jsonl"
    with labels.open("w", encoding="utf-8") as out:
        for item_id in reviewed:
            out.write(json.dumps({"id": item_id, "label": human[item_id]}) + "\n")
    db, guideline = str(replay.db), str(GUIDELINE)
    print(
        "   "
        + cli("import-labels", str(labels), "--annotator", "human", "-g", guideline, "--db", db)
        .strip()
        .replace("\n", "\n   ")
    )
    scored, known = replay.decisions, set(reviewed)
    unreviewed = [score for i, (_, score) in scored.items() if i not in known]
    out = []
    for guarantee in ("population", "dataset"):
        others = unreviewed if guarantee == "dataset" else None
        for target in TARGET_ERRORS:
            text = cli(
                *("calibrate", "--db", db, "--target-error", str(target)),
                *("--confidence", str(CONFIDENCE), "--holdout", "0", "--json"),
                *("--guarantee", guarantee),
            )
            result = json.loads(text)
            rule = result.get("rule") or {}
            mine = library_threshold(scored, human, reviewed, target, "support", others)
            out.append((guarantee, target, rule.get("threshold"), mine, result.get("status", "?")))
    return out


# --- report ---------------------------------------------------------------------------------------


def decile(values: list[float], which: int) -> float:
    """The `which`-th decile (1 = 10th percentile, 9 = 90th)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[which - 1]


def accuracy(scored: Scored, human: dict[str, str]) -> float:
    return sum(scored[i][0] == human[i] for i in scored) / len(scored)


def report_sanity(replays: list[Replay], rows: list[dict[str, Any]], human: dict[str, str]) -> None:
    print(
        "\n   accuracy vs the human labels (recorded argmax | K=5 majority per replay | mean vote)"
    )
    readme = {"gpt-4-turbo": 0.784, "gpt-3.5-turbo": 0.756, "mistral-7b-instruct": 0.750}
    for judge in JUDGES:
        argmax = accuracy(recorded(rows, judge), human)
        majority = [accuracy(vote_share(r.votes[f"openai/{judge}"]), human) for r in replays]
        votes = [
            sum(v == human[i] for i, vs in r.votes[f"openai/{judge}"].items() for v in vs)
            / sum(len(vs) for vs in r.votes[f"openai/{judge}"].values())
            for r in replays
        ]
        print(
            f"   {judge:<20} argmax {argmax:.3f} (README {readme[judge]:.3f}) | majority "
            f"{', '.join(f'{a:.3f}' for a in majority)} | votes {statistics.mean(votes):.3f}"
        )
    jury = [accuracy(r.decisions, human) for r in replays]
    print(f"   {'jury decision':<20} {'':<29}| majority {', '.join(f'{a:.3f}' for a in jury)}")


def report_method(method: str, target: float, outcomes: list[Outcome], n_items: int) -> None:
    coverage = [o.coverage for o in outcomes]
    mean_coverage = statistics.mean(coverage)
    over = sum(o.error > target for o in outcomes) / len(outcomes)
    over_all = sum(o.population_error > target for o in outcomes) / len(outcomes)
    accepted = sum(o.accepted for o in outcomes)
    pooled = sum(o.wrong for o in outcomes) / accepted if accepted else 0.0
    no_rule = sum(o.threshold is None for o in outcomes)
    oracle = statistics.mean(o.oracle for o in outcomes)
    p10, p90 = decile(coverage, 1), decile(coverage, 9)
    mean_error = statistics.mean(o.error for o in outcomes)
    print(
        f"   {method:<5} E={target:.2f}: coverage {mean_coverage:6.1%} (p10 {p10:5.1%}, p90 "
        f"{p90:5.1%}) | error mean {mean_error:.3f}, pooled {pooled:.3f} | error > E in "
        f"{over:5.1%} of splits"
    )
    line = (
        f"   {'':<5} {'':<6}  no rule in {no_rule / len(outcomes):5.1%} of splits | error on all"
        f" {n_items} items > E in {over_all:5.1%} | oracle coverage {oracle:5.1%}"
    )
    if method in REFERENCE:
        line += f" | issue's figure: ~{REFERENCE[method][target]:.0%} coverage"
    print(line)
    by_replay: dict[int, list[float]] = {}
    for o in outcomes:
        by_replay.setdefault(o.replay, []).append(o.coverage)
    means = ", ".join(f"{statistics.mean(c):.1%}" for _, c in sorted(by_replay.items()))
    print(f"   {'':<5} {'':<6}  mean coverage per replay: {means}")
    if method not in REFERENCE:
        wanted = TARGET_COVERAGE[target]
        print(
            f"   {'':<5} {'':<6}  target coverage >= {wanted:.0%}: "
            f"{'PASS' if mean_coverage >= wanted else 'FAIL'}; error > E in <= "
            f"{TARGET_OVER_SHARE:.0%} of splits: {'PASS' if over <= TARGET_OVER_SHARE else 'FAIL'}"
        )


def report_thresholds(outcomes: dict[tuple[str, float], list[Outcome]]) -> None:
    print("\n   thresholds chosen (most common, share of splits)")
    for (method, target), found in outcomes.items():
        counts = Counter("none" if o.threshold is None else f"{o.threshold:.5g}" for o in found)
        common = ", ".join(f"{t} {c / len(found):.0%}" for t, c in counts.most_common(4))
        print(f"   {method:<5} E={target:.2f}: {common}")


# --- main ---------------------------------------------------------------------------------------


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Selective labeling with a guarantee on arena_judges: three real judges "
        "replayed through the simulated server, calibrated on half the human labels.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--data", type=Path, default=DEFAULT_DATA, help="arena_judges items.jsonl")
    add("--replays", type=int, default=4, help="labelling runs with different seeds")
    add("--splits", type=int, default=250, help="random halves per replay (replays x splits)")
    add("--concurrency", type=int, default=32, help="requests in flight per judge")
    add("--samples", type=int, default=5, help="K, votes per judge and item (fixed)")
    add("--seed", type=int, default=0, help="first server/audit seed; split seeds derive from it")
    add("--keep", action="store_true", help="keep the temp folder with the logs and print it")
    args = parser.parse_args(argv)
    if args.replays < 1 or args.splits < 1:
        parser.error("--replays and --splits must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    in_scratch_folder(run, arguments(argv), "bench-selective-")


def in_scratch_folder(
    run: Callable[[argparse.Namespace, Path], None], args: argparse.Namespace, prefix: str
) -> None:
    """`run(args, folder)` in a new temporary folder, removed after unless `--keep`; prints the
    folder when kept and the whole wall time."""
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        run(args, folder)
    finally:
        if args.keep:
            print(f"\n   logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"   total wall {time.perf_counter() - started:.0f} s")


def run(args: argparse.Namespace, folder: Path) -> None:
    rows = load_rows(args.data)
    human = {row["id"]: row["label"] for row in rows}
    items, gold = write_inputs(rows, folder)
    print(f"== selective labeling: {len(rows)} items from {args.data}")
    print(
        f"   model {MAIN}, jury {', '.join(f'openai/{j}' for j in JUDGES[1:])}; K={args.samples}"
        f" per judge, fixed; C={CONFIDENCE}; {args.replays} replays x {args.splits} splits"
        f" (seed {args.seed})"
    )
    replays = labelled_replays(args, items, gold, folder)
    report_sanity(replays, rows, human)
    probability = recorded(rows, JUDGES[0])
    split_started = time.perf_counter()
    outcomes, (reviewed, held) = run_splits(replays, probability, human, args)
    split_wall = time.perf_counter() - split_started
    print(f"\n   CLI check on replay 0, split 0 ({len(reviewed)} reviewed, {len(held)} held out):")
    for guarantee, target, theirs, mine, status in cli_check(replays[0], human, reviewed, folder):
        same = "same" if theirs == mine else "DIFFERENT"
        print(
            f"   {guarantee:<10} E={target:.2f}: calibrate CLI {status} {theirs} | library {mine}"
            f" -> {same}"
        )
    n_splits = len(next(iter(outcomes.values())))
    print(
        f"\n   {n_splits} splits ({len(reviewed)} reviewed / {len(held)} evaluated each), "
        f"calibrated in {split_wall:.1f} s"
    )
    for method, description in METHODS.items():
        print(f"\n   {method} {description}")
        for target in TARGET_ERRORS:
            report_method(method, target, outcomes[(method, target)], len(rows))
    report_thresholds(outcomes)


if __name__ == "__main__":
    main()
