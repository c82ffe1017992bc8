"""The DuckDB log: migrations from empty and from every earlier version, and sharing the file."""

import multiprocessing
import time

import duckdb
import pytest

from labelagent.errors import DatabaseError
from labelagent.store.db import connect, migrate, schema_version, transaction
from labelagent.store.migrations import MIGRATIONS

NEWEST = MIGRATIONS[-1].version
PUBLIC_TABLES = {
    "batches",
    "batch_lines",
    "runs",
    "items",
    "guidelines",
    "drafts",
    "decisions",
    "decisions_history",
    "reviews",
    "calibrations",
    "final_labels",
}


def tables(db) -> set[str]:
    with transaction(db) as con:
        return {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }


def test_an_empty_database_gets_every_migration_once(db):
    assert migrate(db) == [m.version for m in MIGRATIONS]
    assert migrate(db) == []
    assert tables(db) >= PUBLIC_TABLES
    with transaction(db) as con:
        assert schema_version(con) == NEWEST


@pytest.mark.parametrize("previous", range(1, NEWEST + 1))
def test_a_database_made_by_an_earlier_version_upgrades_and_keeps_its_rows(previous, db):
    migrate(db, target=previous)
    with transaction(db) as con:
        con.execute(
            "INSERT INTO items (item_id, dataset, fields, content_hash)"
            " VALUES ('a', 'd', '{}', 'h')"
        )
        con.execute(
            "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, source)"
            " VALUES ('a', 'g', 'ann', '\"x\"', 'import', 'import')"
        )
    migrate(db)
    with transaction(db) as con:
        assert schema_version(con) == NEWEST
        assert con.execute("SELECT item_id FROM items").fetchall() == [("a",)]
        assert con.execute("SELECT item_id, label, source FROM final_labels").fetchall() == [
            ("a", '"x"', "human")
        ]


def test_a_database_from_a_newer_labelagent_is_refused(db):
    migrate(db)
    with transaction(db) as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(DatabaseError, match="schema version 999, newer than this labelagent knows"):
        migrate(db)


def _hold(path: str, seconds: float, ready) -> None:
    con = duckdb.connect(path)
    ready.set()
    time.sleep(seconds)
    con.close()


def test_a_writer_waits_for_another_process_instead_of_failing(db):
    migrate(db)
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(db), 0.8, ready))
    holder.start()
    ready.wait(10)
    started = time.monotonic()
    with transaction(db) as con:
        con.execute(
            "INSERT INTO items (item_id, dataset, fields, content_hash)"
            " VALUES ('b', 'd', '{}', 'h')"
        )
    waited = time.monotonic() - started
    holder.join()
    assert waited > 0.3, "the file was held by the other process"
    with transaction(db) as con:
        assert con.execute("SELECT count(*) FROM items").fetchone() == (1,)


def test_a_writer_gives_up_with_a_clear_message_when_the_file_stays_locked(db):
    migrate(db)
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(db), 3.0, ready))
    holder.start()
    ready.wait(10)
    try:
        with (
            pytest.raises(DatabaseError, match="another process has held the database"),
            connect(db, wait=0.5),
        ):
            pass
    finally:
        holder.join()


@pytest.mark.parametrize("previous", range(1, 8))
def test_a_decision_from_before_cascades_keeps_its_row_with_no_stage(previous, db):
    migrate(db, target=previous)
    with transaction(db) as con:
        con.execute(
            "INSERT INTO decisions (item_id, guideline_hash, run_id, model, prompt_hash, label,"
            " route, reasons, agreement, confidence, n_samples, n_failed, votes,"
            " disagreeing_models, rule) VALUES ('a', 'g', 'r', 'm', 'p', '\"x\"', 'auto', '[]',"
            " 1.0, 0.9, 2, 0, '{}', '[]', '{}')"
        )
    migrate(db)
    with transaction(db) as con:
        assert con.execute(
            "SELECT item_id, model, stage, stages_tried FROM decisions"
        ).fetchall() == [("a", "m", None, None)]
