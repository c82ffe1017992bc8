"""Does a refused sign-in take as long for a name without an account as for a wrong password?

    python evals/benchmarks/bench_signin.py              # 20 of each, ~10 s
    python evals/benchmarks/bench_signin.py --rounds 50

Times the review app's sign-in (`page_state.sign_in`: the back-off check and count in the log, the
scrypt check, the answer) on a fresh log with `--rounds` accounts, alternating a name that has no
account with a wrong password for an account. Each attempt uses its own name and client, so the
back-off never applies. Also times what every script run now costs: the session check against
the log (`page_state.check_session`). Prints medians; nothing is asserted.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from labelagent.review.accounts import add_reviewer
from labelagent.review_ui import page_state
from labelagent.store.db import migrate


def timed(action: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    action(*args)
    return (time.perf_counter() - start) * 1000


def summary(label: str, ms: list[float]) -> None:
    print(
        f"{label:<34} median {statistics.median(ms):6.1f} ms"
        f"   min {min(ms):6.1f}   max {max(ms):6.1f}   (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "signin.duckdb"
        migrate(db)
        for i in range(args.rounds):
            add_reviewer(db, f"user{i}", "reviewer", f"password-of-user{i}")
        wrong_name, wrong_password, checks = [], [], []
        for i in range(args.rounds):
            guess = "a-guess-123"
            wrong_name.append(timed(page_state.sign_in, {}, db, f"ghost{i}", guess, f"n{i}"))
            wrong_password.append(timed(page_state.sign_in, {}, db, f"user{i}", guess, f"p{i}"))
        state: dict = {}
        page_state.sign_in(state, db, "user0", "password-of-user0", "ok")
        for _ in range(args.rounds):
            checks.append(timed(page_state.check_session, state, db))
    summary("wrong name (no such account)", wrong_name)
    summary("wrong password (existing account)", wrong_password)
    diff = statistics.median(wrong_name) - statistics.median(wrong_password)
    print(f"{'difference of the medians':<34} {diff:+6.1f} ms")
    summary("session check (every run)", checks)


if __name__ == "__main__":
    main()
