"""One DuckDB file, three writers at once: a real `labelagent label` run against the simulated
annotator and two reviewers, each in its own process, claiming and submitting while the run
writes. DuckDB lets one process open the file at a time, so every one of them has to wait for the
lock, and none of them may lose, duplicate or double-assign anything while doing so."""

import json
import os
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import REPO, label_command, rows, write_jsonl

from labelagent.review.queue import QueueItem, claim, submit
from labelagent.simserver import SimConfig, SimServer
from labelagent.store.db import migrate

N_ITEMS = 300
REVIEWERS = ("ada", "grace")
SENTIMENTS = ("negative", "neutral", "positive")


def decide(item: QueueItem) -> tuple[str, Any]:
    """What a scripted reviewer does with an item: mostly accept, sometimes correct or flag."""
    draw = zlib.crc32(item.item_id.encode()) % 10
    if draw == 0:
        return "flag", None
    if draw < 3 or item.llm_label is None:
        return "correct", next(s for s in SENTIMENTS if s != item.llm_label)
    return "accept", item.llm_label


def review_until_done(db: str, reviewer: str, labeling_done: Path, results: Path) -> None:
    """A reviewer process: claim a few items, review them one by one, until the run has finished
    (`labeling_done` exists) and the queue is empty. Writes what it submitted, and any exception
    it saw, to `results`."""
    submitted: list[tuple[str, str, str, Any]] = []
    error = None
    try:
        while True:
            finished = labeling_done.exists()  # read before claiming, so nothing is missed
            batch = claim(db, reviewer, size=3)
            if not batch and finished:
                break
            if not batch:
                time.sleep(0.05)
            for item in batch:
                time.sleep(0.02)  # a (very fast) person reads the item
                action, label = decide(item)
                submit(db, reviewer, item, action, label, seconds_on_screen=0.02)
                submitted.append((item.item_id, reviewer, action, label))
    except Exception as e:  # the test asserts there was none
        error = f"{type(e).__name__}: {e}"
    results.write_text(json.dumps({"submitted": submitted, "error": error}), encoding="utf-8")


# A plain subprocess, not multiprocessing: spawn would re-run whatever `__main__` the test process
# has (Streamlit's AppTest leaves the review app there).
REVIEWER_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_concurrent_writers import review_until_done
review_until_done(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
"""


def start_reviewer(db: Path, name: str, labeling_done: Path) -> subprocess.Popen:
    tests = str(Path(__file__).resolve().parent)
    command = [sys.executable, "-c", REVIEWER_SCRIPT, tests, str(db), name, str(labeling_done)]
    with (db.parent / f"{name}.log").open("w") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [*command, str(db.parent / f"{name}.json")], cwd=REPO, stdout=log, stderr=log
        )


def reviewer_results(db: Path, name: str, process: subprocess.Popen) -> tuple[list, str | None]:
    process.wait(timeout=120)
    out = db.parent / f"{name}.json"
    assert out.exists(), (db.parent / f"{name}.log").read_text()
    result = json.loads(out.read_text(encoding="utf-8"))
    return [tuple(entry) for entry in result["submitted"]], result["error"]


def run_labeling_and_review(tmp_path: Path, db: Path) -> tuple[dict, subprocess.CompletedProcess]:
    items = [{"id": f"w{i:03d}", "text": f"message number {i}"} for i in range(N_ITEMS)]
    path = write_jsonl(tmp_path / "items.jsonl", items)
    gold = {item["id"]: {"label": SENTIMENTS[i % 3]} for i, item in enumerate(items)}
    migrate(db)  # the reviewers start polling before the run has created anything
    labeling_done = tmp_path / "labeling-done"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test"}
    config = SimConfig(accuracy=0.7, gold=gold, latency_ms=40, latency_jitter_ms=20, seed=3)
    with SimServer(config) as server:
        reviewers = {name: start_reviewer(db, name, labeling_done) for name in REVIEWERS}
        run = subprocess.run(
            label_command(db, path, server.url, concurrency=16),
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
    labeling_done.touch()
    by_reviewer = {name: reviewer_results(db, name, p) for name, p in reviewers.items()}
    return by_reviewer, run


def test_a_labeling_run_and_two_reviewers_share_one_database_file(tmp_path, db):
    by_reviewer, run = run_labeling_and_review(tmp_path, db)

    assert run.returncode == 0, run.stderr
    assert "lock" not in run.stderr.lower(), run.stderr
    assert {name: error for name, (_, error) in by_reviewer.items()} == dict.fromkeys(REVIEWERS)

    assert rows(db, "SELECT count(*), count(DISTINCT item_id) FROM decisions") == [
        (N_ITEMS, N_ITEMS)
    ], "every item has exactly one decision"
    duplicate_drafts = rows(
        db,
        "SELECT count(*) FROM (SELECT item_id, guideline_hash, prompt_hash, model, sample_index"
        " FROM drafts GROUP BY ALL HAVING count(*) > 1)",
    )
    assert duplicate_drafts == [(0,)]
    assert rows(db, "SELECT sum(n_samples) FROM decisions") == rows(
        db, "SELECT count(*) FROM drafts"
    ), "every sample a decision counts is stored, once"

    submitted = Counter(
        (item_id, reviewer, action)
        for entries, _ in by_reviewer.values()
        for item_id, reviewer, action, _ in entries
    )
    stored = Counter(rows(db, "SELECT item_id, reviewer, action FROM reviews"))
    twice = {key: n for key, n in submitted.items() if n > 1}
    assert not twice, f"no reviewer submitted an item twice: {twice}"
    assert stored == submitted, "every submitted review is stored exactly once, nothing else"

    escalated = {i for (i,) in rows(db, "SELECT item_id FROM decisions WHERE route = 'escalated'")}
    reviewed = Counter(item_id for item_id, _, _ in submitted)
    assert set(reviewed) == escalated, "the two reviewers cleared the whole queue between them"
    assert max(reviewed.values()) == 1, "with overlap 1 no item went to both reviewers"
    assert all(entries for entries, _ in by_reviewer.values()), "both reviewers got work"
    assert rows(db, "SELECT count(*) FROM claims") == [(0,)], "no claim is left behind"
    during_run = rows(
        db, "SELECT count(*) FROM reviews WHERE created_at < (SELECT max(finished_at) FROM runs)"
    )[0][0]
    assert during_run > 0, "the reviewers really worked while the run was writing"
