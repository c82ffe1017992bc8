"""How often a labeling run reads its input file, and its wall time and peak RSS on a large one.

    PYTHONPATH=$PWD python evals/benchmarks/bench_input_reads.py --items 100000

The backend answers in-process at once, with one sample per item, so the figures are the input,
log and pipeline path alone (the simulated server's throughput is
evals/benchmarks/bench_throughput.py).
Wall time depends on what else the machine runs; CPU time (user + system, all threads) less so.
Two runs, each in a child process of its own (so each peak RSS is its own): a first run that
labels every item, then the same run again, which finds every item decided. "Reads" counts the
passes over the file (calls of the record reader, `labelagent.inputs._records`).
"""

import argparse
import json
import multiprocessing
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GUIDELINE = REPO / "guidelines" / "sentiment.md"
WORDS = ["today", "game", "love", "hate", "new", "update", "phone", "bus", "weather", "city"]


class InstantBackend:
    """Answers every request at once with the same label; keeps nothing."""

    name = "instant/model"
    supports_n = True
    priced = True

    async def sample(self, request: Any) -> list[Any]:
        from labelagent.records import Sample

        return [
            Sample(model=self.name, label="neutral", confidence=0.9, rationale="")
            for _ in range(request.n)
        ]


def write_items(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.choices(WORDS, k=rng.randint(8, 18)))
            out.write(json.dumps({"id": f"syn-{i:07d}", "text": text}) + "\n")


def child(job: dict[str, Any], results: Any) -> None:
    from labelagent import inputs
    from labelagent.calibration.rule import Thresholds
    from labelagent.guidelines import load_guideline
    from labelagent.pipeline import Labeler, RunSettings

    reads = 0
    reader = inputs._records

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return reader(*args, **kwargs)

    inputs._records = counted
    labeler = Labeler(
        job["db"],
        load_guideline(GUIDELINE),
        [InstantBackend()],
        RunSettings(samples=1),
        Thresholds(),
        concurrency=8,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    progress = labeler.run(job["items"])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    results.put(
        {
            "reads": reads,
            "wall": wall,
            "cpu": cpu,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "done": progress.done,
            "skipped": progress.skipped,
        }
    )


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=child, args=(job, results))
    process.start()
    result = results.get()
    process.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        items = Path(tmp) / "items.jsonl"
        write_items(items, args.items)
        size_mb = items.stat().st_size / 2**20
        print(f"{args.items} items, {size_mb:.1f} MB JSONL, one sample per item")
        job = {"items": str(items), "db": str(Path(tmp) / "log.duckdb")}
        for title in ("first run (labels all)", "second run (all decided)"):
            r = run_child(job)
            print(
                f"  {title}: {r['reads']} reads of the file, {r['wall']:.1f} s "
                f"({r['cpu']:.1f} s CPU), peak RSS {r['rss_mb']:.0f} MB ({r['done']} labeled, "
                f"{r['skipped']} already decided)"
            )


if __name__ == "__main__":
    main()
