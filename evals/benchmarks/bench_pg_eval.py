"""How fast `labelagent eval` and the reads behind `calibrate` (agent/store/annotations.load) are
on PostgreSQL next to the same log in a DuckDB file.

A synthetic sentiment log (agent/store/synthetic.py) is built in a DuckDB file, copied to the
given empty PostgreSQL database (`labelagent copy`), then both are read in turn, interleaved.

    python evals/benchmarks/bench_pg_eval.py postgresql://user@127.0.0.1:5432/empty --items 5000
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from labelagent.evals.evaluate import evaluate
from labelagent.guidelines import load_guideline
from labelagent.store import log, synthetic
from labelagent.store.annotations import load
from labelagent.store.copying import copy_log
from labelagent.store.db import migrate, transaction
from labelagent.tasks import prompt_hash

GUIDELINE = Path(__file__).resolve().parents[2] / "guidelines" / "sentiment.md"


def build(db: Path, n: int) -> str:
    """A log of `n` decided items, a fifth escalated with 5 drafts each, 1,000 reviewed."""
    guideline = load_guideline(GUIDELINE)
    migrate(db)
    log.record_guideline(db, guideline)
    with transaction(db) as con:
        synthetic.fill_sentiment(
            con, guideline.content_hash, prompt_hash(guideline), n, 20, 5, min(1000, n // 5)
        )
        synthetic.add_gold_reviews(con)
    return guideline.content_hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postgres", help="an empty PostgreSQL database")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        duck = Path(folder) / "log.duckdb"
        ghash = build(duck, args.items)
        started = time.perf_counter()
        copied = copy_log(duck, args.postgres)
        print(f"copy to PostgreSQL: {time.perf_counter() - started:.2f} s, rows {copied}")
        timings: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, db in (("duckdb", duck), ("postgresql", args.postgres)):
                started = time.perf_counter()
                data = load(db, ghash)
                timings.setdefault(f"load {name}", []).append(time.perf_counter() - started)
                started = time.perf_counter()
                evaluate(db, n_resamples=0)
                timings.setdefault(f"eval {name}", []).append(time.perf_counter() - started)
        print(f"{len(data.annotations)} annotations per load")
        for name, seconds in timings.items():
            print(f"{name}: median {statistics.median(seconds) * 1000:.0f} ms of {args.rounds}")


if __name__ == "__main__":
    main()
