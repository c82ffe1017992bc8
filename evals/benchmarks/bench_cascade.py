"""A cascade of real LLM judges against today's jury: coverage, guarantee and API cost.

    python evals/benchmarks/bench_cascade.py                  # 1,000 splits, ~3 min
    python evals/benchmarks/bench_cascade.py --splits 100     # quicker

On `../shared/data/arena_judges/items.jsonl` (500 pairwise preferences with a human label and
the probabilities three real LLM judges gave to A and B), replayed through the simulated server
as `bench_selective.py` does (its data and server machinery are reused):

1. Cascade: labelagent's real path (`Labeler` with `escalate_to`) labels every item with the
   stages mistral-7b-instruct > gpt-3.5-turbo > gpt-4-turbo, adaptive sampling (K <= 5,
   stop-confidence 0.85), `calibration_share` 1, so every item has every stage's drafts and the
   cascade can be simulated on any split without new calls.
2. Jury: the same items with gpt-4-turbo and the jury gpt-3.5-turbo, mistral-7b-instruct, all
   sampled adaptively, one stage (today's `label --jury`).
3. For each of `--splits` random halves: the human labels of one half calibrate (the cascade:
   `labelagent.calibration.cascade.select_stages`, one joint fixed-sequence test of the error of
   everything any stage accepts, along per-stage score quantiles; the jury and gpt-4-turbo
   alone: `labelagent.calibration.learn.calibrate` on support), C = 0.9; the other half measures
   coverage, realized error and API cost. The same splits serve every method. "cascade
   mistral>gpt-3.5" is the first two stages alone (gpt-4-turbo never called), from the same log.
   The cost of an item is what its drafts would cost at list prices: for the cascade, the stages
   it reached (stage 0 up to the stage that accepted it, or all of them when escalated); for
   gpt-4-turbo alone, its own drafts from the cascade replay; for the jury, all its drafts.
   Prompt tokens are the simulated server's count of the real prompt (characters / 4), paid once
   per request; completion tokens are its count of the answers.
4. Violations: the share of splits whose error among the evaluated half's accepted items
   exceeds E (the issue's measure; a finite half of 250 items, so it also counts splits where
   the rule's error is under E but the half's is not), and the same on all 500 items. The
   ", dataset" rows calibrate with the bound on the evaluated half itself (the `dataset`
   guarantee's exact hypergeometric bound; the half's items have every stage's drafts here), the
   claim that measure checks.
5. Cost per trusted label over all 500 items: every draft of both halves (the reviewed half ran
   through every stage, as calibration items do) plus people's time for the reviewed half and
   the evaluated items left to them, at `--seconds-per-review` (no person labeled this data in
   labelagent, so the pace is an assumption, 60 s by default) and `--reviewer-cost-per-hour`
   ($30); people alone cost one review per item.
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import duckdb

from labelagent.calibration.cascade import (
    CascadeExample,
    counts,
    family,
    outcome,
    select_stages,
    stage_verdicts,
)
from labelagent.calibration.learn import Example, calibrate, fixed_sequence
from labelagent.evals.benchmarks.bench_selective import (
    DEFAULT_DATA,
    GUIDELINE,
    halves,
    in_scratch_folder,
    load_rows,
    write_inputs,
)
from labelagent.evals.benchmarks.bench_throughput import sim_server
from labelagent.evals.metrics import hypergeometric_upper
from labelagent.store.readback import draft_tokens

STAGES = ("mistral-7b-instruct", "gpt-3.5-turbo", "gpt-4-turbo")
PRICES = {  # US dollars per million tokens: prompt, completion (list prices)
    "mistral-7b-instruct": (0.25, 0.25),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-4-turbo": (10.0, 30.0),
}
TARGET_ERRORS = (0.15, 0.20)
CONFIDENCE = 0.9
ISSUE_JURY_COVERAGE = {0.15: 0.415, 0.20: 0.788}  # today's jury, as the issue quotes it
TARGET_OVER_SHARE = 0.10
SECONDS_PER_REVIEW = 60.0
CASCADES = {  # name: (the logged cascade's first stages, the dataset bound)
    "cascade": (3, False),
    "cascade mistral>gpt-3.5": (2, False),
    "cascade, dataset bound": (3, True),
    "mistral>gpt-3.5, dataset": (2, True),
}
METHODS = ("jury", "gpt-4-turbo alone", *CASCADES)
TARGET_COST_SHARE, MOONSHOT_COST_SHARE = 0.40, 0.25


@dataclass
class Scored:
    """Per item: each stage's (label, score) (a one-stage method has one) and cost."""

    stages: dict[str, list[tuple[Any, float | None]]]
    costs: dict[str, list[float]]  # item -> cost of each stage's drafts


def model_name(judge: str) -> str:
    return f"openai/{judge}"


def run_labeler(url: str, items: Path, db: Path, stages: Sequence[Sequence[str]]) -> None:
    from labelagent.backends import make_backend
    from labelagent.calibration.rule import Thresholds
    from labelagent.cascade import Stage
    from labelagent.guidelines import load_guideline
    from labelagent.pipeline import Labeler, RunSettings

    def backends(judges: Sequence[str]) -> list:
        return [
            make_backend(model_name(j), url, api_key="sk-sim", concurrency=16, timeout=60.0)
            for j in judges
        ]

    thresholds = Thresholds(audit_share=0.0)
    Labeler(
        db,
        load_guideline(GUIDELINE),
        backends(stages[0]),
        RunSettings(samples=5, calibration_share=1.0),
        thresholds,
        concurrency=48,
        escalate_to=[Stage(backends(s), thresholds) for s in stages[1:]],
    ).run(items)


def draft_costs(db: Path, stages: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = draft_tokens(con)
    finally:
        con.close()
    index = {model_name(j): i for i, judges in enumerate(stages) for j in judges}
    costs: dict[str, list[float]] = {}
    for row in rows:
        p_in, p_out = PRICES[row.model.removeprefix("openai/")]
        cost = (row.prompt_tokens * p_in + row.completion_tokens * p_out) / 1e6
        costs.setdefault(row.item_id, [0.0] * len(stages))[index[row.model]] += cost
    return costs


def read_log(db: Path, stages: Sequence[Sequence[str]]) -> Scored:
    """Each stage's label and score from the stored drafts, as `labelagent calibrate` reads a
    cascade; a single stage (the jury) as it reads a decision: support over all its models."""
    from labelagent.cascade import cascade_key, stage_score
    from labelagent.guidelines import load_guideline
    from labelagent.store.annotations import load

    guideline = load_guideline(GUIDELINE)
    key = cascade_key([[model_name(j) for j in judges] for judges in stages])
    costs = draft_costs(db, stages)
    if len(stages) == 1:
        decisions = load(db, guideline.content_hash).by_item(key)
        scored = {i: [(json.loads(a.label), a.signals["support"])] for i, a in decisions.items()}
        return Scored(scored, costs)
    con = duckdb.connect(str(db), read_only=True)
    try:
        verdicts = stage_verdicts(con, guideline, key)
    finally:
        con.close()
    scored = {
        item: [(v.label, stage_score(v)) for v in found if v is not None]
        for item, found in verdicts.items()
    }
    return Scored(scored, costs)


@dataclass
class Outcome:
    coverage: float
    error: float  # among the accepted items of the evaluated half
    all_error: float  # among the accepted items of all the items, under the same rule
    cost: float  # per evaluated item
    cost_per_accepted: float | None
    escalated: int  # evaluated items left to people
    calibration_cost: float  # the reviewed half's drafts (every stage: they calibrate)


def measured(
    accepted: list[bool], costs: list[float], all_accepted: list[bool], calibration_cost: float
) -> Outcome:
    total = sum(costs)
    return Outcome(
        len(accepted) / len(costs),
        rate_wrong(accepted),
        rate_wrong(all_accepted),
        total / len(costs),
        total / len(accepted) if accepted else None,
        len(costs) - len(accepted),
        calibration_cost,
    )


def rate_wrong(accepted: list[bool]) -> float:
    return sum(not right for right in accepted) / len(accepted) if accepted else 0.0


def cascade_split(
    s: Scored,
    n_stages: int,
    human: dict[str, str],
    reviewed: list[str],
    held: list[str],
    target: float,
    dataset: bool = False,
) -> Outcome:
    """The first `n_stages` stages of the logged cascade, calibrated on `reviewed`; `dataset`:
    with the bound on the evaluated half itself (`dataset_thresholds`)."""

    def examples(ids: list[str]) -> list[CascadeExample]:
        return [
            CascadeExample(
                i, tuple(score for _, score in s.stages[i][:n_stages]),
                tuple(label == human[i] for label, _ in s.stages[i][:n_stages]),
            )
            for i in ids
        ]  # fmt: skip

    if dataset:
        thresholds = dataset_thresholds(examples(reviewed), examples(held), target)
    else:
        thresholds = select_stages(examples(reviewed), target, CONFIDENCE).threshold
    if thresholds is None:
        thresholds = (None,) * n_stages
    results = outcome(examples(held), thresholds)
    accepted = [right for stage, right in results if stage is not None]
    costs = [
        sum(s.costs[i][: (n_stages - 1 if stage is None else stage) + 1])
        for i, (stage, _) in zip(held, results, strict=True)
    ]
    everything = outcome(examples(reviewed + held), thresholds)
    return measured(
        accepted,
        costs,
        [right for stage, right in everything if stage is not None],
        sum(sum(s.costs[i][:n_stages]) for i in reviewed),
    )


def dataset_thresholds(
    reviewed: list[CascadeExample], held: list[CascadeExample], target: float
) -> tuple[float | None, ...] | None:
    """The cascade's joint test with the `dataset` guarantee of `labelagent calibrate`: the
    exact hypergeometric bound on the error among the evaluated items each step accepts (known
    here, every item has every stage's drafts), instead of the population bound."""

    def upper(k: int, n: int, step: tuple[float | None, ...]) -> float:
        if n == 0:
            return 1.0
        return hypergeometric_upper(k, n, counts(held, step)[0], CONFIDENCE)

    def accepted(step: tuple[float | None, ...]) -> tuple[int, int]:
        return counts(reviewed, step)

    steps = family(reviewed)
    return fixed_sequence(steps, accepted, upper, len(reviewed), target).threshold


def single_split(
    s: Scored,
    stage: int,
    human: dict[str, str],
    reviewed: list[str],
    held: list[str],
    target: float,
) -> Outcome:
    def example(i: str) -> Example:
        label, score = s.stages[i][stage]
        return Example(i, score if score is not None else -1.0, label == human[i])

    rule = calibrate([example(i) for i in reviewed], target, CONFIDENCE, "support", 0, 0).rule
    threshold = None if rule is None else rule["threshold"]

    def accepted(ids: list[str]) -> list[bool]:
        return [
            e.correct for e in map(example, ids) if threshold is not None and e.score >= threshold
        ]

    return measured(
        accepted(held),
        [s.costs[i][stage] for i in held],
        accepted(reviewed + held),
        sum(s.costs[i][stage] for i in reviewed),
    )


def trusted_label_cost(o: Outcome, n_reviewed: int, n_held: int, per_review: float) -> float:
    """Dollars per trusted label over all the items: the drafts of both halves, and people's
    time for the reviewed half (the calibration labels) and the evaluated items left to them."""
    api = o.calibration_cost + o.cost * n_held
    return (api + (n_reviewed + o.escalated) * per_review) / (n_reviewed + n_held)


def report(
    name: str,
    outcomes: list[Outcome],
    target: float,
    jury: list[Outcome] | None,
    per_review: float,
    halves_size: tuple[int, int],
) -> None:
    coverage = statistics.mean(o.coverage for o in outcomes)
    over = sum(o.error > target for o in outcomes) / len(outcomes)
    over_all = sum(o.all_error > target for o in outcomes) / len(outcomes)
    cost = statistics.mean(o.cost for o in outcomes)
    per_accepted = [o.cost_per_accepted for o in outcomes if o.cost_per_accepted is not None]
    shown = f"${statistics.mean(per_accepted):.5f}" if per_accepted else "-"
    trusted = statistics.mean(trusted_label_cost(o, *halves_size, per_review) for o in outcomes)
    line = (
        f"   {name:<27} E={target:.2f}: coverage {coverage:6.1%} | error > E in {over:5.1%} of"
        f" splits (on all items {over_all:4.1%}) | API ${cost:.5f}/item, {shown}/accepted |"
        f" ${trusted:.4f}/trusted label"
    )
    if jury is not None:
        jury_cost = statistics.mean(o.cost for o in jury)
        jury_coverage = statistics.mean(o.coverage for o in jury)
        share = cost / jury_cost
        wanted = max(jury_coverage, ISSUE_JURY_COVERAGE[target])
        verdict = coverage >= wanted and over <= TARGET_OVER_SHARE and share <= TARGET_COST_SHARE
        line += f" | {share:.1%} of the jury's API cost -> {'PASS' if verdict else 'FAIL'}"
        line += " (moonshot met)" if verdict and share <= MOONSHOT_COST_SHARE else ""
    print(line)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--splits", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the logs.")
    parser.add_argument(
        "--seconds-per-review",
        type=float,
        default=SECONDS_PER_REVIEW,
        help="A person's pace on one item (no reviewer labeled this data: an assumption).",
    )
    parser.add_argument("--reviewer-cost-per-hour", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    in_scratch_folder(run, arguments(argv), "bench-cascade-")


def run(args: argparse.Namespace, folder: Path) -> None:
    rows = load_rows(args.data)
    human = {row["id"]: row["label"] for row in rows}
    items, gold = write_inputs(rows, folder)
    print(f"== cascade: {len(rows)} items from {args.data}; C={CONFIDENCE}, {args.splits} splits")
    for judge, (p_in, p_out) in PRICES.items():
        print(
            f"   {judge}: ${p_in:.2f} per million prompt tokens, ${p_out:.2f} per million"
            " completion tokens"
        )
    cascade_stages = [[j] for j in STAGES]
    jury_stages = [["gpt-4-turbo", "gpt-3.5-turbo", "mistral-7b-instruct"]]
    logs = {}
    for name, stages in (("cascade", cascade_stages), ("jury", jury_stages)):
        db = folder / f"{name}.duckdb"
        begun = time.perf_counter()
        with sim_server(gold, 0.0, 1.0, args.seed) as server:
            run_labeler(server.url, items, db, stages)
        logs[name] = read_log(db, stages)
        print(f"   {name} labeled in {time.perf_counter() - begun:.0f} s")
    cascade, jury = logs["cascade"], logs["jury"]
    ids = sorted(set(human) & set(cascade.stages) & set(jury.stages))
    per_review = args.seconds_per_review / 3600 * args.reviewer_cost_per_hour
    print(
        f"   people: {args.seconds_per_review:g} s per review at ${args.reviewer_cost_per_hour:g}"
        f"/h: ${per_review:.4f} per label, people alone ${per_review:.4f} per trusted label"
    )
    for target in TARGET_ERRORS:
        results: dict[str, list[Outcome]] = {name: [] for name in METHODS}
        for split in range(args.splits):
            reviewed, held = halves(ids, f"{args.seed}|{split}")
            results["jury"].append(single_split(jury, 0, human, reviewed, held, target))
            results["gpt-4-turbo alone"].append(
                single_split(cascade, 2, human, reviewed, held, target)
            )
            for name, (n_stages, dataset) in CASCADES.items():
                results[name].append(
                    cascade_split(cascade, n_stages, human, reviewed, held, target, dataset)
                )
        print()
        sizes = (len(reviewed), len(held))
        for name, outcomes in results.items():
            compared = results["jury"] if name in CASCADES else None
            report(name, outcomes, target, compared, per_review, sizes)


if __name__ == "__main__":
    main()
