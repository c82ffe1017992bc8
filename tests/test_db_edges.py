"""A database the commands cannot or must not use: damaged, someone else's, old, out of reach.
Each gets one message naming the path and what to do, exit code 1, no traceback, and the file
is left exactly as it was. Read commands open the log read-only and never upgrade it."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from conftest import GUIDELINES, write_jsonl
from typer.testing import CliRunner

from labelagent.cli import app
from labelagent.store.db import migrate, transaction
from labelagent.store.migrations import MIGRATIONS

NEWEST = MIGRATIONS[-1].version
SENTIMENT = str(GUIDELINES / "sentiment.md")
NOWHERE_MODEL = ("--model", "openai/never-called", "--api-base", "http://127.0.0.1:9/v1")


class Run:
    """A command's output (line wrapping undone), its exit code, and whether it crashed."""

    def __init__(self, *args: object) -> None:
        result = CliRunner().invoke(app, [str(a) for a in args])
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())
        self.raw = result.output
        self.crashed = result.exception is not None and not isinstance(result.exception, SystemExit)


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gold_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "gold.jsonl",
        [{"id": f"g{i}", "text": f"t{i}", "label": "positive"} for i in range(3)],
    )


@pytest.fixture
def labeled_db(tmp_path: Path) -> Path:
    db = tmp_path / "log.duckdb"
    result = Run(
        "import-labels", gold_file(tmp_path), "--annotator", "gold", "-g", SENTIMENT, "--db", db
    )
    assert result.exit_code == 0, result.output
    return db


def read_commands(db: Path, tmp_path: Path) -> dict[str, list[object]]:
    """Every command that only reads the log, with arguments that would work on a good one."""
    return {
        "status": ["status", "--db", db],
        "export": ["export", "--db", db, "--out", tmp_path / "out" / "labels.jsonl"],
        "eval": ["eval", "--db", db, "--bootstrap", "50"],
        "plan": ["plan", gold_file(tmp_path), "-g", SENTIMENT, "--db", db],
        "calibrate": ["calibrate", "--target-error", "0.1", "--db", db],
    }


def write_commands(db: Path, tmp_path: Path) -> dict[str, list[object]]:
    return {
        "import-labels": [
            "import-labels", gold_file(tmp_path), "--annotator", "gold", "-g", SENTIMENT,
            "--db", db,
        ],
        "label": ["label", gold_file(tmp_path), "-g", SENTIMENT, "--db", db, *NOWHERE_MODEL],
        "reviewer add": ["reviewer", "add", "ann", "--db", db],
        "migrate": ["migrate", "--db", db],
    }  # fmt: skip


def other_application(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    con.close()


def someone_elses_schema_migrations(path: Path) -> None:
    """A Rails application's database has a schema_migrations table too, of strings."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY)")
    con.execute("INSERT INTO schema_migrations VALUES ('20240101000000')")
    con.close()


def cut_short(path: Path, good: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])


NOT_A_LOG = "not a labelagent database"
DAMAGED = "the database file is damaged"
BAD_FILES = {
    "a text file": (lambda p, good: p.write_text("hello\n" * 500), NOT_A_LOG),
    "random bytes": (lambda p, good: p.write_bytes(os.urandom(300_000)), NOT_A_LOG),
    "another application's DuckDB file": (lambda p, good: other_application(p), NOT_A_LOG),
    "a foreign schema_migrations table": (
        lambda p, good: someone_elses_schema_migrations(p),
        NOT_A_LOG,
    ),
    "a log cut short": (cut_short, DAMAGED),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_file_that_is_not_a_good_log_is_refused_and_left_alone(kind, tmp_path, labeled_db):
    make, message = BAD_FILES[kind]
    bad = tmp_path / "bad.duckdb"
    make(bad, labeled_db)
    before = fingerprint(bad)
    commands = read_commands(bad, tmp_path) | write_commands(bad, tmp_path)
    for name, args in commands.items():
        result = Run(*args)
        assert not result.crashed, f"{name}: {result.raw}"
        assert result.exit_code == 1, f"{name}: {result.output}"
        assert f"{bad}: {message}" in result.output, f"{name}: {result.output}"
        assert fingerprint(bad) == before, f"{name} wrote into {kind}"


def test_damage_anywhere_in_the_file_is_a_message_not_a_traceback(tmp_path, labeled_db):
    """Zeros over each block in turn: DuckDB notices at open, or only when a query reads the
    block, or not at all (a free block, or one status does not read)."""
    data, block = labeled_db.read_bytes(), 256 * 1024
    caught = 0
    for start in range(3 * 4096, len(data), block):
        bad = tmp_path / f"bad-{start}.duckdb"
        bad.write_bytes(data[: start + 100] + bytes(64) + data[start + 164 :])
        result = Run("status", "--db", bad)
        assert not result.crashed, result.raw
        if result.exit_code:
            assert f"{bad}: the database file is damaged" in result.output
            caught += 1
    assert caught


def test_read_commands_on_a_missing_database_say_so_and_create_nothing(tmp_path):
    """Except `plan`, which is made for before the first run."""
    db = tmp_path / "nothing.duckdb"
    commands = read_commands(db, tmp_path)
    assert Run(*commands.pop("plan")).exit_code == 0
    for name, args in commands.items():
        result = Run(*args)
        assert not result.crashed, f"{name}: {result.raw}"
        assert result.exit_code == 1, f"{name}: {result.output}"
        assert f"{db}: no such database" in result.output, f"{name}: {result.output}"
        assert not db.exists(), name


def test_migrate_of_a_missing_database_says_so(tmp_path):
    result = Run("migrate", "--db", tmp_path / "nothing.duckdb")
    assert result.exit_code == 1
    assert "nothing.duckdb: no such database" in result.output
    assert not (tmp_path / "nothing.duckdb").exists()


def test_a_database_in_a_folder_that_does_not_exist(tmp_path):
    db = tmp_path / "no" / "such" / "folder" / "log.duckdb"
    for name, args in write_commands(db, tmp_path).items():
        if name == "migrate":
            continue
        result = Run(*args)
        assert not result.crashed, f"{name}: {result.raw}"
        assert result.exit_code == 1, f"{name}: {result.output}"
        assert f"{db}: the folder {db.parent} does not exist" in result.output, name
    assert not (tmp_path / "no").exists()


def test_a_database_path_nobody_can_write_at(tmp_path):
    """/proc takes no new files, not even from root."""
    db = Path("/proc/labelagent-test.duckdb")
    result = Run(*write_commands(db, tmp_path)["import-labels"])
    assert not result.crashed, result.raw
    assert result.exit_code == 1
    assert f"{db}: cannot write there" in result.output


@pytest.fixture
def read_only_copy(tmp_path: Path, labeled_db: Path) -> Iterator[Path]:
    """The labeled log on a read-only bind mount (skipped where this process cannot mount)."""
    source, mounted = tmp_path / "source", tmp_path / "readonly"
    source.mkdir()
    mounted.mkdir()
    shutil.copy(labeled_db, source / "log.duckdb")
    mount = subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mount.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True)
        yield mounted / "log.duckdb"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_on_a_read_only_file_system_reads_work_and_writes_say_why_not(tmp_path, read_only_copy):
    db = read_only_copy
    status = Run("status", "--db", db, "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.raw)["reviews"] == 3
    exported = Run("export", "--db", db, "--out", tmp_path / "labels.csv")
    assert exported.exit_code == 0, exported.output
    for name, args in write_commands(db, tmp_path).items():
        result = Run(*args)
        assert not result.crashed, f"{name}: {result.raw}"
        assert result.exit_code == 1, f"{name}: {result.output}"
        assert f"{db}: cannot write there (Read-only file system)" in result.output, name
    unwritable = Run("export", "--db", db, "--out", db.parent / "labels.jsonl")
    assert unwritable.exit_code == 1
    assert f"{db.parent / 'labels.jsonl'}: cannot write the export" in unwritable.output


@pytest.mark.parametrize("out", ["/proc/labels.jsonl", "/proc/no/such/labels.csv"])
def test_export_to_a_path_that_cannot_be_written(out, labeled_db):
    result = Run("export", "--db", labeled_db, "--out", out)
    assert not result.crashed, result.raw
    assert result.exit_code == 1
    assert f"{out}: cannot write the export" in result.output
    assert "--out" in result.output


def test_schema_out_to_a_path_that_cannot_be_written():
    result = Run("schema", "--out", "/proc/no/such/schema.md")
    assert not result.crashed, result.raw
    assert result.exit_code == 1
    assert "/proc/no/such/schema.md: No such file or directory" in result.output


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    """A log made by labelagent at schema version 1, with one imported label."""
    db = tmp_path / "old.duckdb"
    migrate(db, target=1)
    with transaction(db) as con:
        con.execute(
            "INSERT INTO items (item_id, dataset, fields, content_hash)"
            " VALUES ('g0', 'gold', '{\"text\": \"t0\"}', 'h')"
        )
    return db


def schema_version_of(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    finally:
        con.close()


def test_read_commands_never_upgrade_an_old_log_and_say_how_to(tmp_path, old_db):
    before = fingerprint(old_db)
    for name, args in read_commands(old_db, tmp_path).items():
        result = Run(*args)
        assert not result.crashed, f"{name}: {result.raw}"
        assert result.exit_code == 1, f"{name}: {result.output}"
        assert f"run `labelagent migrate --db {old_db}`" in result.output.lower(), name
        assert fingerprint(old_db) == before, f"{name} changed the database"
    assert schema_version_of(old_db) == 1


def test_read_commands_leave_a_current_log_byte_for_byte_as_it_was(tmp_path, labeled_db):
    before = fingerprint(labeled_db)
    for name, args in read_commands(labeled_db, tmp_path).items():
        Run(*args)
        assert fingerprint(labeled_db) == before, f"{name} changed the database"


def test_label_that_refuses_its_input_leaves_an_old_log_at_its_version(tmp_path, old_db):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": \n', encoding="utf-8")
    before = fingerprint(old_db)
    result = Run("label", bad, "-g", SENTIMENT, "--db", old_db, *NOWHERE_MODEL)
    assert result.exit_code == 1
    assert "bad.jsonl, line 2" in result.output
    assert schema_version_of(old_db) == 1
    assert fingerprint(old_db) == before


def test_migrate_upgrades_an_old_log_and_says_from_which_version(old_db):
    result = Run("migrate", "--db", old_db)
    assert result.exit_code == 0, result.output
    assert f"upgraded from schema version 1 to {NEWEST}" in result.output
    assert schema_version_of(old_db) == NEWEST
    assert Run("status", "--db", old_db).exit_code == 0
    again = Run("migrate", "--db", old_db)
    assert f"already at schema version {NEWEST}" in again.output


def test_a_read_command_opens_duckdb_read_only(labeled_db):
    """Another process reading the file read-only at the same time is no conflict for status
    (DuckDB refuses a read-write open while any other process has the file open)."""
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True);"
            " print('open', flush=True); time.sleep(30)",
            str(labeled_db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "open"
        result = subprocess.run(
            [sys.executable, "-m", "labelagent.cli", "status", "--db", str(labeled_db), "--json"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        reader.kill()
        reader.wait()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reviews"] == 3


def test_export_carries_the_label_as_json_not_as_a_json_encoded_string(tmp_path, labeled_db):
    for suffix in (".jsonl", ".csv", ".parquet"):
        assert Run("export", "--db", labeled_db, "--out", tmp_path / f"l{suffix}").exit_code == 0
    first = json.loads((tmp_path / "l.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["label"] == "positive"
    assert first["fields"] == {"id": "g0", "text": "t0"}
    con = duckdb.connect()
    try:
        csv_label, csv_fields = con.execute(
            f"SELECT label, fields FROM read_csv('{tmp_path / 'l.csv'}', all_varchar = true)"
        ).fetchone()
        parquet = con.execute(f"SELECT label, fields FROM '{tmp_path / 'l.parquet'}'")
        types = [column[1] for column in parquet.description]
        parquet_label, _ = parquet.fetchone()
    finally:
        con.close()
    assert json.loads(csv_label) == "positive", "CSV holds the label's JSON text"
    assert json.loads(csv_fields) == {"id": "g0", "text": "t0"}
    assert types == ["JSON", "JSON"], "Parquet marks the columns as JSON"
    assert json.loads(parquet_label) == "positive"


def test_an_import_refused_for_its_annotator_leaves_an_old_log_at_its_version(tmp_path, old_db):
    with transaction(old_db) as con:
        con.execute(
            "INSERT INTO decisions (item_id, guideline_hash, run_id, model, prompt_hash, label,"
            " route, reasons, n_samples, n_failed, votes, disagreeing_models, rule) VALUES"
            " ('g0', 'g', 'r', 'openai/sim', 'p', '\"positive\"', 'auto', '[]', 1, 0, '{}',"
            " '[]', '{}')"
        )
    labels = write_jsonl(tmp_path / "labels.jsonl", [{"id": "g0", "label": "positive"}])
    before = fingerprint(old_db)
    result = Run(
        "import-labels", labels, "--annotator", "openai/sim", "-g", SENTIMENT, "--db", old_db
    )
    assert result.exit_code == 1
    assert "is the name of a model that labeled items" in result.output
    assert schema_version_of(old_db) == 1
    assert fingerprint(old_db) == before


def test_review_with_an_unknown_guideline_leaves_an_old_log_at_its_version(old_db):
    before = fingerprint(old_db)
    result = Run("review", "--db", old_db, "--guideline", "nosuch", "--overlap", "2")
    assert result.exit_code == 1
    assert "no guideline named 'nosuch'" in result.output
    assert schema_version_of(old_db) == 1
    assert fingerprint(old_db) == before
