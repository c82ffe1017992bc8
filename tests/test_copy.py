"""`labelagent copy`: a log made by a real labeling run moves DuckDB -> PostgreSQL -> DuckDB (and
DuckDB -> DuckDB) with every row of every table intact; `labelagent status` reads the same figures
from the copy in PostgreSQL (against a real PostgreSQL server)."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import psycopg
import pytest
from conftest import GUIDELINES, REPO, label_command, write_jsonl

from labelagent.costs import set_setting
from labelagent.errors import DatabaseError
from labelagent.exporting import export
from labelagent.simserver import SimConfig, SimServer
from labelagent.status import status
from labelagent.store.copying import copy_log
from labelagent.store.db import migrate, transaction

SENTIMENTS = ("positive", "negative", "neutral")
ENV = {
    **os.environ,
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "OPENAI_API_KEY": "sk-test",
    "COLUMNS": "200",
}


def labelagent(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelagent.cli", *map(str, args)],
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> Path:
    """A log from a labeling run against the simulated server, with imported human labels."""
    folder = tmp_path_factory.mktemp("labeled")
    db = folder / "log.duckdb"
    items = [{"id": f"c{i:02d}", "text": f"message «{i}» \u2603"} for i in range(30)]
    gold = {item["id"]: {"label": SENTIMENTS[i % 3]} for i, item in enumerate(items)}
    path = write_jsonl(folder / "items.jsonl", items)
    config = SimConfig(accuracy=0.7, gold=gold, latency_ms=5, seed=11)
    with SimServer(config) as server:
        run = subprocess.run(
            label_command(db, path, server.url, concurrency=8),
            env=ENV,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert run.returncode == 0, run.stderr
    human = write_jsonl(
        folder / "human.jsonl",
        [{"id": item["id"], "label": "neutral"} for item in items[:10]],
    )
    sentiment = GUIDELINES / "sentiment.md"
    imported = labelagent("import-labels", human, "--annotator", "ann", "-g", sentiment, "--db", db)
    assert imported.returncode == 0, imported.stderr
    reviewer = labelagent("reviewer", "add", "bob", "--db", db)
    assert reviewer.returncode == 0, reviewer.stderr
    student = labelagent("student", "train", "-g", sentiment, "--include-auto", "--db", db)
    assert student.returncode == 0, student.stderr
    return db


def duckdb_tables(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in a fixed order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
            ).fetchall()
        ]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in names}
    finally:
        con.close()


def test_a_labeled_log_goes_to_postgresql_and_back_with_every_row(labeled, postgres_url, tmp_path):
    there = labelagent("copy", "--from", labeled, "--to", postgres_url)
    assert there.returncode == 0, there.stderr
    back = tmp_path / "back.duckdb"
    again = labelagent("copy", "--from", postgres_url, "--to", back)
    assert again.returncode == 0, again.stderr

    before, after = duckdb_tables(labeled), duckdb_tables(back)
    assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
    for table in before:
        assert after[table] == before[table], table
    assert len(before["drafts"]) >= 30 and len(before["reviews"]) == 10
    assert len(before["reviewers"]) == 1 and len(before["students"]) == 1  # a BLOB column
    assert f"from {labeled} to {postgres_url}" in there.stdout


def test_postgresql_holds_the_same_text_and_continues_the_review_numbers(labeled, postgres_url):
    copy_log(labeled, postgres_url)
    with transaction(postgres_url) as con:
        in_postgres = con.execute("SELECT item_id, fields FROM items ORDER BY item_id").fetchall()
        top = con.execute("SELECT max(review_id) FROM reviews").fetchone()[0]
        con.execute(
            "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, source)"
            " VALUES ('c00', 'g', 'bob', '\"positive\"', 'accept', 'review_ui')"
        )
        new = con.execute("SELECT max(review_id) FROM reviews").fetchone()[0]
    con = duckdb.connect(str(labeled), read_only=True)
    in_duckdb = con.execute("SELECT item_id, fields FROM items ORDER BY item_id").fetchall()
    con.close()
    assert in_postgres == in_duckdb
    assert new > top


def test_a_duckdb_file_copies_to_another_and_its_reviews_keep_counting(labeled, tmp_path):
    target = tmp_path / "copy.duckdb"
    copied = copy_log(labeled, target)
    assert copied["reviews"] == 10 and copied["schema_migrations"] >= 10
    assert duckdb_tables(target) == duckdb_tables(labeled)
    with transaction(target) as con:
        con.execute(
            "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, source)"
            " VALUES ('c00', 'g', 'bob', '\"positive\"', 'accept', 'review_ui')"
        )
        ids = [r[0] for r in con.execute("SELECT review_id FROM reviews").fetchall()]
    assert len(set(ids)) == 11


def test_a_target_that_holds_rows_is_refused_and_left_as_it_was(labeled, postgres_url, tmp_path):
    copy_log(labeled, postgres_url)
    with psycopg.connect(postgres_url) as con:
        con.execute("DELETE FROM reviews WHERE review_id = (SELECT min(review_id) FROM reviews)")
    done = labelagent("copy", "--from", labeled, "--to", postgres_url)
    assert done.returncode == 1
    assert f"{postgres_url}: the target already holds a log" in done.stderr
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 9

    other = tmp_path / "other.duckdb"
    migrate(other)
    with transaction(other) as con:
        con.execute("INSERT INTO log_settings (name, value) VALUES ('x', 'y')")
    with pytest.raises(DatabaseError, match=r"1 rows in log_settings"):
        copy_log(labeled, other)


def test_status_reads_the_same_figures_from_postgresql(labeled, postgres_url, tmp_path):
    timed = tmp_path / "timed.duckdb"
    copy_log(labeled, timed)
    set_setting(timed, "reviewer_cost_per_hour", "30")
    with transaction(timed) as con:
        for item, seconds in (("c01", 12.5), ("c02", 4.0), ("c03", 30.25)):
            con.execute(
                "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, source,"
                " seconds_on_screen) SELECT $1, guideline_hash, 'bob', '\"negative\"', 'correct',"
                " 'review_ui', $2 FROM guidelines",
                [item, seconds],
            )
    copy_log(timed, postgres_url)

    on_duckdb, on_postgres = status(timed), status(postgres_url)
    assert replace(on_postgres, db="") == replace(on_duckdb, db="")
    assert on_duckdb.costs.guidelines[0].median_seconds_per_review == 12.5
    assert on_duckdb.guidelines[0].escalation_reasons
    shown = labelagent("status", "--db", postgres_url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["reviews"] == on_duckdb.reviews == 13


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_export_from_postgresql_writes_the_same_bytes_as_from_duckdb(
    labeled, postgres_url, tmp_path, suffix
):
    copy_log(labeled, postgres_url)
    from_duckdb, from_postgres = tmp_path / f"d{suffix}", tmp_path / f"p{suffix}"
    assert export(labeled, from_duckdb) == export(postgres_url, from_postgres) >= 10
    assert from_postgres.read_bytes() == from_duckdb.read_bytes()

    done = labelagent(
        "export", "--db", postgres_url, "--guideline", "sentiment", "-o", from_postgres
    )
    assert done.returncode == 0, done.stderr
    assert from_postgres.read_bytes() == from_duckdb.read_bytes()


def test_eval_reads_the_same_figures_from_postgresql(labeled, postgres_url):
    copy_log(labeled, postgres_url)
    on_duckdb = labelagent("eval", "--db", labeled, "--json")
    on_postgres = labelagent("eval", "--db", postgres_url, "--json")
    assert on_duckdb.returncode == 0 and on_postgres.returncode == 0, on_postgres.stderr
    figures = [json.loads(done.stdout) for done in (on_duckdb, on_postgres)]
    for shown in figures:
        del shown["db"], shown["generated_at"]
    assert figures[0]["guidelines"][0]["comparisons"]
    assert figures[1] == figures[0]


def test_calibrate_chooses_and_applies_the_same_rule_on_postgresql(labeled, postgres_url, tmp_path):
    on_duckdb = tmp_path / "log.duckdb"
    copy_log(labeled, on_duckdb)
    copy_log(labeled, postgres_url)
    figures, decisions = [], []
    calibrate = ("calibrate", "--target-error", "0.9", "--confidence", "0.5", "-g", "sentiment")
    for db in (on_duckdb, postgres_url):
        done = labelagent(*calibrate, "--apply", "--json", "--db", db)
        assert done.returncode == 0, done.stderr
        figures.append(json.loads(done.stdout))
        del figures[-1]["calibration_id"]
        with transaction(db) as con:
            decisions.append(
                con.execute(
                    "SELECT item_id, route, CAST(reasons AS VARCHAR) FROM decisions"
                    " ORDER BY item_id"
                ).fetchall()
            )
    assert figures[0]["rerouted"]["to_auto"] + figures[0]["rerouted"]["to_escalated"] > 0
    assert figures[1] == figures[0]
    assert decisions[1] == decisions[0]
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM calibrations").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM decisions_history").fetchone()[0] > 0


def test_plan_counts_the_same_decided_items_on_postgresql(labeled, postgres_url):
    copy_log(labeled, postgres_url)
    items, sentiment = labeled.parent / "items.jsonl", GUIDELINES / "sentiment.md"
    plans = []
    for db in (labeled, postgres_url):
        done = labelagent(
            "plan", items, "-g", sentiment, "--model", "openai/sim", "--json", "--db", db
        )
        assert done.returncode == 0, done.stderr
        plans.append(json.loads(done.stdout))
    assert plans[0]["already_decided"] == 30
    assert plans[1] == plans[0]
