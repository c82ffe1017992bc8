"""Commands that run on either backend, each run the same way against a DuckDB file and a
PostgreSQL database (`any_db`, a real server from tests/postgres.py)."""

import json
import os
import subprocess
import sys

from conftest import GUIDELINES, REPO, write_jsonl

from labelagent.exporting import export
from labelagent.review.accounts import list_reviewers
from labelagent.store.db import transaction


def labelagent(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelagent.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def test_settings_set_stores_a_setting_that_settings_show_reads(any_db):
    done = labelagent("settings", "set", "reviewer_cost_per_hour", "30", "--db", any_db)
    assert done.returncode == 0, done.stderr
    again = labelagent("settings", "set", "reviewer_cost_per_hour", "42.5", "--db", any_db)
    assert again.returncode == 0, again.stderr
    shown = labelagent("settings", "show", "--db", any_db)
    assert shown.stdout.split()[:2] == ["reviewer_cost_per_hour", "42.5"]


def test_reviewer_add_reset_password_and_remove(any_db):
    added = labelagent("reviewer", "add", "ann", "--db", any_db, stdin="first-secret\n")
    assert added.returncode == 0, added.stderr
    promoted = labelagent(
        "reviewer", "add", "ann", "--role", "adjudicator", "--db", any_db, stdin="second-secret\n"
    )
    assert promoted.returncode == 0, promoted.stderr
    assert labelagent("reviewer", "add", "bob", "--db", any_db).returncode == 0
    assert [(r.name, r.role) for r in list_reviewers(any_db)] == [
        ("ann", "adjudicator"),
        ("bob", "reviewer"),
    ]
    with transaction(any_db) as con:
        con.execute(
            "INSERT INTO reviewer_sessions (token_sha256, reviewer, client, created_at,"
            " expires_at) VALUES ('t', 'bob', 'c', TIMESTAMP '2030-01-01 10:00:00',"
            " TIMESTAMP '2030-01-01 22:00:00')"
        )

    reset = labelagent("reviewer", "reset-password", "bob", "--db", any_db)
    assert reset.returncode == 0, reset.stderr
    assert "Password (shown once): " in reset.stdout
    with transaction(any_db) as con:
        revoked = con.execute("SELECT revoked_at IS NOT NULL FROM reviewer_sessions").fetchall()
    assert revoked == [(True,)]

    removed = labelagent("reviewer", "remove", "bob", "--db", any_db)
    assert removed.returncode == 0, removed.stderr
    assert [r.name for r in list_reviewers(any_db)] == ["ann"]
    nobody = labelagent("reviewer", "remove", "carol", "--db", any_db)
    assert nobody.returncode == 1
    assert "has no reviewer 'carol'" in nobody.stderr


def test_import_labels_adds_reviews_once_and_fills_placeholders(any_db, tmp_path):
    sentiment = GUIDELINES / "sentiment.md"
    bare = write_jsonl(tmp_path / "bare.jsonl", [{"id": "a", "label": "positive"}])
    full = write_jsonl(
        tmp_path / "full.jsonl",
        [
            {"id": "a", "text": "fine \u2603", "label": "positive", "p": 0.9},
            {"id": "b", "text": "bad", "label": "negative", "p": 0.5},
        ],
    )
    first = labelagent("import-labels", bare, "--annotator", "ann", "-g", sentiment, "--db", any_db)
    assert first.returncode == 0, first.stderr
    assert "1 reviews added (0 already there), 1 new items" in first.stdout
    args = ("--annotator", "bob", "-g", sentiment, "--confidence-field", "p", "--db", any_db)
    second = labelagent("import-labels", full, *args)
    assert second.returncode == 0, second.stderr
    assert "2 reviews added (0 already there), 2 new items" in second.stdout
    again = labelagent("import-labels", full, *args)
    assert "0 reviews added (2 already there), 0 new items" in again.stdout
    with transaction(any_db) as con:
        items = con.execute(
            "SELECT item_id, fields, placeholder FROM items ORDER BY item_id"
        ).fetchall()
        confidences = con.execute(
            "SELECT reviewer, confidence FROM reviews ORDER BY reviewer, item_id"
        ).fetchall()
    assert [(i, json.loads(fields)["text"], placeholder) for i, fields, placeholder in items] == [
        ("a", "fine \u2603", False),
        ("b", "bad", False),
    ]
    assert confidences == [("ann", None), ("bob", 0.9), ("bob", 0.5)]
    assert export(any_db, tmp_path / "out.csv") == 2
