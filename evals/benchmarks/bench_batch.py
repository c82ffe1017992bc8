"""`labelagent label --batch` end to end against the simulated server, with faults: a run killed
(SIGKILL) while its first batch is pending, then resumed until every item is decided. Prints
items decided (each once), batches the server created against those in the log, samples drawn
against drafts stored, duplicate drafts, and the drafts' cost at the batch price against the
online price of the same tokens. Prints figures; asserts nothing.

    python evals/benchmarks/bench_batch.py               # 1,000 items, ~2 minutes on 2 cores
    python evals/benchmarks/bench_batch.py --items 200 --line-faults 0.1
"""

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labelagent import prices
from labelagent.evals.benchmarks.bench_faults import ENV, ROOT, corpus, query
from labelagent.simserver import SimConfig, SimServer
from labelagent.store import readback

MODEL = "openai/gpt-4o-mini"  # litellm's table has its batch price
ESCALATE = "openai/gpt-4o"


def command(db: Path, items: Path, url: str) -> list[str]:
    return [
        sys.executable, "-m", "labelagent.cli", "label", str(items), "--guideline",
        str(ROOT / "guidelines" / "sentiment.md"), "--db", str(db), "--api-base", url,
        "--mode", "json", "--model", MODEL, "--escalate-to", ESCALATE, "--batch",
        "--batch-poll-seconds", "0.2",
    ]  # fmt: skip


def kill_while_pending(run: list[str], server: SimServer) -> None:
    first = subprocess.Popen(
        run, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while server.counts["batches_created"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    print(
        f"killed while batch pending: {server.counts['batches_created']} batch created, "
        f"{server.counts['requests']} lines answered so far"
    )


def resume(run: list[str], attempts: int = 5) -> list[int]:
    """Run again until every item is decided (lines the server failed leave items waiting)."""
    codes = []
    for _ in range(attempts):
        done = subprocess.run(run, env=ENV, cwd=ROOT, capture_output=True, text=True)
        codes.append(done.returncode)
        notices = [line for line in done.stderr.splitlines() if "batch" in line]
        for line in notices:
            print(f"  | {line.strip()}")
        if done.returncode == 0:
            break
    return codes


def costs(db: Path) -> tuple[float, float]:
    """The drafts' cost as logged (batch price) and the online price of the same tokens."""
    drafts = query(db, readback.draft_costs)
    batch = sum(d.cost_usd or 0.0 for d in drafts)
    online = sum(
        prices.price(
            d.model, d.prompt_tokens or 0, d.completion_tokens or 0, d.cached_prompt_tokens or 0
        )
        or 0.0
        for d in drafts
    )
    return batch, online


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--line-faults", type=float, default=0.03, help="share of lines failing")
    parser.add_argument("--batch-delay", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        items, gold = corpus(Path(tmp), args.items)
        db = Path(tmp) / "log.duckdb"
        config = SimConfig(
            accuracy=0.8,
            gold=gold,
            fault_rate=args.line_faults,
            faults=("429", "500", "bad_json"),
            batch_delay_seconds=args.batch_delay,
            batch_faults=["expired", "failed"],
            keep_history=False,
        )
        started = time.monotonic()
        with SimServer(config) as server:
            run = command(db, items, server.url)
            kill_while_pending(run, server)
            codes = resume(run)
            created, drawn = server.counts["batches_created"], server.counts["choices"]
        elapsed = time.monotonic() - started
        stored = query(db, readback.batch_run)
        batch_cost, online_cost = costs(db)
    print(f"items: {args.items}; resumed runs' exit codes: {codes}; wall {elapsed:.1f} s")
    print(
        f"items decided: {stored.decided} ({stored.decided_items} distinct);"
        f" by stage and route: {stored.stage_routes}"
    )
    print(
        f"batches created by the server: {created}; in the log: {stored.batches}"
        f" ({stored.batch_ids} ids)"
    )
    print(f"batch statuses in the log: {stored.batch_statuses}")
    print(f"samples the server drew in batches: {drawn}; drafts in the log: {stored.drafts}")
    print(f"duplicate drafts: {stored.duplicate_drafts}")
    print(
        f"cost of the drafts: ${batch_cost:.4f} at the batch price, ${online_cost:.4f} at the "
        f"online price of the same tokens ({batch_cost / online_cost:.0%})"
    )


if __name__ == "__main__":
    main()
