"""A labeling run keeps its DuckDB file open between writes and hands it to any other process
that asks: the review app and other commands still get in while a run goes."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, rows
from tenacity import RetryCallState, Retrying
from test_faults import entry

from labelagent.store.db import KeptOpen, _backoff, connect, migrate
from labelagent.store.writer import ResultWriter

COUNT_DECISIONS = (
    "import sys\n"
    "from labelagent.store.db import transaction\n"
    "with transaction(sys.argv[1]) as con:\n"
    "    print(con.execute('SELECT count(*) FROM decisions').fetchone()[0])\n"
)


def another_process(db: Path) -> subprocess.Popen:
    """Another labelagent process (as the review app is) reading the log, waiting up to 10 s."""
    env = {**os.environ, "LABELAGENT_DB_WAIT_SECONDS": "10"}
    return subprocess.Popen(
        [sys.executable, "-c", COUNT_DECISIONS, str(db)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def write_read_write(db: Path) -> tuple[str, str, float]:
    writer = ResultWriter(db, every_items=200, every_seconds=1.0)
    await writer.start()
    writer.add(entry("a", "r1"))
    await writer.flush()
    started = time.monotonic()
    reader = another_process(db)
    while reader.poll() is None:  # the event loop runs on, as during a run
        await asyncio.sleep(0.01)
    waited = time.monotonic() - started
    writer.add(entry("b", "r1"))
    await writer.flush()
    await writer.close()
    return reader.stdout.read().strip(), reader.stderr.read(), waited


def test_a_running_writer_hands_the_file_to_another_process_that_asks(db):
    migrate(db)
    seen, errors, waited = asyncio.run(write_read_write(db))
    assert seen == "1", errors
    assert waited < 8, "it got the file long before its 10 s wait ran out"
    assert rows(db, "SELECT item_id FROM decisions ORDER BY item_id") == [("a",), ("b",)]


def test_a_write_that_waits_for_another_process_first_lets_go_of_the_file_it_keeps(db):
    """The other process holds the side lock and waits for DuckDB's lock, which this one holds by
    keeping the file open: the write must let go, or each waits for the other."""
    migrate(db)
    kept = KeptOpen(db)
    kept.hold()
    reader = another_process(db)
    deadline = time.monotonic() + 30
    while not kept.asked() and time.monotonic() < deadline:
        time.sleep(0.01)
    with connect(db, wait=5) as con:
        con.execute("SELECT count(*) FROM decisions").fetchall()
    kept.close()
    out, errors = reader.communicate(timeout=30)
    assert reader.returncode == 0, errors
    assert out.strip() == "0"


def test_the_wait_between_attempts_stays_under_75_ms_after_thousands_of_attempts():
    """A minute's wait for a held file is ~1,600 attempts; 2 ** 1024 once overflowed the float."""
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = 2000
    assert 0.025 <= _backoff(state) <= 0.075
