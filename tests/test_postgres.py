"""The log on PostgreSQL: the same migrations and the same documented schema as on DuckDB, and
clear errors for a URL that does not lead to a labelagent log (against a real server,
tests/postgres.py)."""

import os
import socket
import subprocess
import sys

import psycopg
import pytest
from conftest import REPO

from labelagent.errors import DatabaseError
from labelagent.store.address import PostgresUrl, parse_db, redact
from labelagent.store.db import migrate, read_only, require_existing, transaction
from labelagent.store.migrations import MIGRATIONS
from labelagent.store.schema_doc import describe, generate

NEWEST = MIGRATIONS[-1].version


def version_of(url: str) -> int:
    with psycopg.connect(url) as con:
        return con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]


def test_an_empty_database_gets_every_migration_once(postgres_url):
    assert migrate(postgres_url) == [m.version for m in MIGRATIONS]
    assert migrate(postgres_url) == []
    assert version_of(postgres_url) == NEWEST


def test_postgresql_and_duckdb_get_the_same_tables_columns_and_types(postgres_url, db):
    migrate(postgres_url)
    migrate(db)
    on_duckdb, on_postgres = describe(db), describe(postgres_url)
    assert {c.table for c in on_duckdb} >= {"items", "drafts", "decisions", "final_labels"}
    assert on_postgres == on_duckdb


@pytest.mark.parametrize("previous", range(1, NEWEST))
def test_a_database_made_by_an_earlier_version_upgrades_and_keeps_its_rows(previous, postgres_url):
    migrate(postgres_url, target=previous)
    with transaction(postgres_url) as con:
        con.execute(
            "INSERT INTO items (item_id, dataset, fields, content_hash) VALUES ($1, $2, $3, $4)",
            ["a", "d", "{}", "h"],
        )
        con.execute(
            "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, source)"
            " VALUES ('a', 'g', 'ann', '\"x\"', 'import', 'import')"
        )
    migrate(postgres_url)
    assert version_of(postgres_url) == NEWEST
    with transaction(postgres_url) as con:
        assert con.execute("SELECT item_id, fields FROM items").fetchall() == [("a", "{}")]
        assert con.execute("SELECT item_id, label, source FROM final_labels").fetchall() == [
            ("a", '"x"', "human")
        ]


def test_one_statement_text_with_dollar_placeholders_runs_on_both_backends(any_db):
    migrate(any_db)
    with transaction(any_db) as con:
        con.execute("INSERT INTO log_settings (name, value) VALUES ($1, $2)", ["audit_key", "00ff"])
    with transaction(any_db) as con:
        assert con.execute(
            "SELECT value, created_at IS NOT NULL FROM log_settings WHERE name = $1", ["audit_key"]
        ).fetchall() == [("00ff", True)]


def test_a_database_from_a_newer_labelagent_is_refused_and_left_as_it_was(postgres_url):
    migrate(postgres_url)
    with psycopg.connect(postgres_url) as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(DatabaseError, match="schema version 999, newer than this labelagent knows"):
        migrate(postgres_url)
    with pytest.raises(DatabaseError, match="schema version 999"), read_only(postgres_url):
        pass
    assert version_of(postgres_url) == 999


def test_a_database_of_another_program_is_refused_and_left_as_it_was(postgres_url):
    with psycopg.connect(postgres_url) as con:
        con.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(DatabaseError, match=r"not a labelagent database .*orders"):
        migrate(postgres_url)
    with psycopg.connect(postgres_url) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == [("orders",)]


def test_an_unreachable_server_is_named_without_its_password():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once it is closed
    url = f"postgresql://ann:s3cret@127.0.0.1:{port}/log"
    with pytest.raises(DatabaseError) as raised:
        migrate(url)
    message = str(raised.value)
    assert message.startswith(f"postgresql://ann@127.0.0.1:{port}/log: cannot connect")
    assert "Connection refused" in message
    assert "s3cret" not in message
    assert "the server is running" in raised.value.hint


def test_a_database_that_does_not_exist_is_a_clear_error(postgres_server):
    url = postgres_server.rsplit("/", 1)[0] + "/nowhere?password=s3cret"
    with pytest.raises(DatabaseError, match='database "nowhere" does not exist') as raised:
        migrate(url)
    assert "s3cret" not in str(raised.value)


def test_a_read_command_needs_a_log_and_cannot_write_to_it(postgres_url):
    with pytest.raises(DatabaseError, match="no labelagent log in this database"):
        require_existing(postgres_url)
    migrate(postgres_url)
    with (
        read_only(postgres_url),
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        transaction(postgres_url) as con,
    ):
        con.execute("DELETE FROM items")


def test_a_url_prints_without_its_password():
    assert redact("postgresql://ann:s3cret@db.example:5432/log?sslmode=require&password=x") == (
        "postgresql://ann@db.example:5432/log?sslmode=require"
    )
    url = parse_db("postgresql://ann:s3cret@db.example/log")
    assert isinstance(url, PostgresUrl)
    assert f"{url} {url!r}".count("s3cret") == 0
    assert str(parse_db("logs/labelagent.duckdb")) == "logs/labelagent.duckdb"


def with_password(url: str) -> str:
    """The same URL with a password in it (the test server trusts local users and ignores it)."""
    return url.replace("labelagent@", "labelagent:s3cret@")


def labelagent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelagent.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def test_migrate_takes_the_url_from_labelagent_db_and_never_prints_the_password(postgres_url):
    migrate(postgres_url, target=NEWEST - 1)
    done = labelagent("migrate", env={"LABELAGENT_DB": with_password(postgres_url)})
    assert done.returncode == 0, done.stderr
    assert f"{postgres_url}: upgraded from schema version {NEWEST - 1} to {NEWEST}" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr
    assert version_of(postgres_url) == NEWEST


def test_a_wrong_url_on_the_command_line_is_one_clear_message(postgres_url):
    wrong = with_password(postgres_url.rsplit("/", 1)[0] + "/nowhere")
    done = labelagent("migrate", "--db", wrong)
    assert done.returncode == 1
    assert 'database "nowhere" does not exist' in done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr


def test_schema_of_a_postgresql_log_is_the_documented_schema(postgres_url):
    migrate(postgres_url, target=NEWEST - 1)
    older = labelagent("schema", "--db", postgres_url)
    assert older.returncode == 0, older.stderr
    assert f"Schema version {NEWEST - 1}." in older.stdout
    migrate(postgres_url)
    done = labelagent("schema", "--db", postgres_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == generate() == (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    assert older.stdout != done.stdout


def test_the_commands_tested_on_postgresql_run_there(postgres_url):
    migrate(postgres_url)
    for command in (["settings", "show"], ["reviewer", "list"], ["status", "--json"]):
        done = labelagent(*command, "--db", postgres_url)
        assert done.returncode == 0, (command, done.stderr)


def test_a_command_not_yet_ported_refuses_a_postgresql_url_and_touches_nothing(postgres_url):
    items = REPO / "agent" / "demo_data"
    done = labelagent(
        "label", str(items), "-g", str(REPO / "guidelines" / "sentiment.md"), "--db", postgres_url
    )
    assert done.returncode == 2
    assert "`labelagent label` does not run on PostgreSQL yet" in " ".join(done.stderr.split())
    with psycopg.connect(postgres_url) as con:
        assert con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone() == (0,)


def test_a_connection_lost_mid_transaction_is_a_clear_error_and_keeps_nothing(postgres_url):
    migrate(postgres_url)
    stopped = pytest.raises(DatabaseError, match="PostgreSQL stopped the transaction")
    with stopped as raised, transaction(postgres_url) as con:
        con.execute("INSERT INTO log_settings (name, value) VALUES ('a', 'b')")
        pid = con.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(postgres_url) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        con.execute("INSERT INTO log_settings (name, value) VALUES ('c', 'd')")
    assert str(raised.value).startswith(f"{postgres_url}: ")
    with transaction(postgres_url) as con:  # the pool replaces the dead connection
        assert con.execute("SELECT count(*) FROM log_settings").fetchone() == (0,)


def test_reading_an_empty_database_says_there_is_no_log_in_it(postgres_url):
    with (
        pytest.raises(DatabaseError, match="no labelagent log in this database"),
        read_only(postgres_url),
    ):
        pass
