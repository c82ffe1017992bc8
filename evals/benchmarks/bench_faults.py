"""Faults mid-run, measured through `labelagent label` in a subprocess against the simulated
annotator: what --budget really spends, and what an outage, a held database and a full disk
cost in items. Only the CLI and SQL on the log are used, so the same script measures an older
checkout too (PYTHONPATH=that checkout). Prints figures; asserts nothing.

    python evals/benchmarks/bench_faults.py                      # everything, ~6 min on 2 cores
    python evals/benchmarks/bench_faults.py --only budget outage
"""

import argparse
import fcntl
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from labelagent.simserver import SimConfig, SimServer
from labelagent.store import readback

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test"}
PRICED = "openai/gpt-4o-mini"
T = TypeVar("T")


def corpus(where: Path, n: int) -> tuple[Path, dict[str, dict]]:
    path = where / "items.jsonl"
    labels = ("positive", "negative", "neutral")
    with path.open("w") as f:
        for i in range(n):
            f.write(f'{{"id": "i{i:04d}", "text": "text number {i}"}}\n')
    return path, {f"i{i:04d}": {"label": labels[i % 3]} for i in range(n)}


def label(db: Path, items: Path, url: str, *options: str, env: dict | None = None) -> int:
    command = [
        sys.executable, "-m", "labelagent.cli", "label", str(items), "--guideline",
        str(ROOT / "guidelines" / "sentiment.md"), "--db", str(db), "--api-base", url,
        "--mode", "json", *options,
    ]  # fmt: skip
    if "--model" not in options:
        command += ["--model", "openai/sim"]
    done = subprocess.run(command, env=env or ENV, cwd=ROOT, capture_output=True, text=True)
    return done.returncode


def query(db: Path, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return read(con)
    finally:
        con.close()


def outcome(db: Path, n: int, served: int) -> str:
    counts = query(db, readback.decision_counts)
    decided, labeled, failed = counts.items, counts.labelled, counts.failed
    drafts = query(db, readback.draft_count)
    return (
        f"{decided}/{n} decided, {decided - labeled} without a label, {failed} escalated for "
        f"failed samples, {n - decided} undecided; {drafts} drafts stored of {served} served"
    )


def budget(work: Path) -> None:
    for concurrency in (1, 8, 32):
        db = work / f"budget{concurrency}.duckdb"
        items, gold = corpus(work, 400)
        with SimServer(SimConfig(accuracy=0.8, gold=gold, latency_ms=5)) as server:
            code = label(
                db, items, server.url, "--model", PRICED, "--concurrency", str(concurrency),
                "--budget", "0.02",
            )  # fmt: skip
        spent = query(db, readback.draft_spend)
        print(
            f"budget $0.02, concurrency {concurrency}: spent ${spent:.5f} "
            f"({100 * (spent / 0.02 - 1):+.1f}%), exit {code}"
        )
    db = work / "reruns.duckdb"
    items, gold = corpus(work, 1500)
    with SimServer(SimConfig(accuracy=0.8, gold=gold, latency_ms=5)) as server:
        for run in range(1, 4):
            code = label(db, items, server.url, "--model", PRICED, "--budget", "0.05")
            spent = query(db, readback.draft_spend)
            print(f"--budget 0.05, run {run}: ${spent:.5f} spent in all, exit {code}")


def during(server: SimServer, after_choices: int, fault: Callable[[], None]) -> threading.Thread:
    def wait_then_fault() -> None:
        while server.counts["choices"] < after_choices:
            time.sleep(0.01)
        fault()

    thread = threading.Thread(target=wait_then_fault)
    thread.start()
    return thread


def outage(work: Path, seconds: float = 20.0) -> None:
    db = work / "outage.duckdb"
    items, gold = corpus(work, 400)
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:

        def down() -> None:
            server.stop()
            time.sleep(seconds)
            server.start()

        thread = during(server, 150, down)
        first = label(db, items, server.url, "--concurrency", "8")
        thread.join()
        print(
            f"outage of {seconds:.0f} s: exit {first}; {outcome(db, 400, server.counts['choices'])}"
        )
        second = label(db, items, server.url, "--concurrency", "8")
        print(f"  rerun: exit {second}; {outcome(db, 400, server.counts['choices'])}")


def held(work: Path, seconds: float = 70.0) -> None:
    db = work / "held.duckdb"
    items, gold = corpus(work, 600)
    with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:

        def hold() -> None:
            with open(f"{db}.lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                time.sleep(seconds)

        thread = during(server, 200, hold)
        first = label(db, items, server.url, "--concurrency", "4")
        thread.join()
        served = server.counts["choices"]
        print(f"database held {seconds:.0f} s: exit {first}; {outcome(db, 600, served)}")
        second = label(db, items, server.url, "--concurrency", "4")
        print(f"  rerun: exit {second}; {outcome(db, 600, server.counts['choices'])}")


def full_disk(work: Path) -> None:
    disk = work / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)]).returncode:
        print("full disk: cannot mount a tmpfs here, skipped")
        return
    try:
        db = disk / "log.duckdb"
        items, gold = corpus(work, 400)
        with SimServer(SimConfig(accuracy=0.9, gold=gold, latency_ms=20)) as server:

            def fill() -> None:
                with open(disk / "filler", "wb", buffering=0) as f:
                    try:
                        while True:
                            f.write(b"\0" * 65536)
                    except OSError:
                        pass

            thread = during(server, 150, fill)
            first = label(db, items, server.url, "--concurrency", "4")
            thread.join()
            (disk / "filler").unlink()
            print(f"full disk: exit {first}; {outcome(db, 400, server.counts['choices'])}")
            second = label(db, items, server.url, "--concurrency", "4")
            print(f"  rerun: exit {second}; {outcome(db, 400, server.counts['choices'])}")
    finally:
        subprocess.run(["umount", "-l", str(disk)])


MEASUREMENTS = {"budget": budget, "outage": outage, "held": held, "disk": full_disk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    args = parser.parse_args()
    for name in args.only:
        with tempfile.TemporaryDirectory() as work:
            MEASUREMENTS[name](Path(work))


if __name__ == "__main__":
    main()
