"""Imported labels and labeling runs share the items: an import that only names the items (id and
label) never blocks labeling them later, in any order; one that carries their fields must match."""

from pathlib import Path

import pytest
from conftest import GUIDELINES, rows, write_jsonl
from fakes import FakeBackend

from labelagent import inputs
from labelagent.calibration.rule import Thresholds
from labelagent.errors import InputError
from labelagent.guidelines import load_guideline
from labelagent.importing import import_labels
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Item
from labelagent.store import log
from labelagent.store.db import migrate, transaction

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
TWEETS = [{"id": f"t{i}", "text": f"tweet {i}"} for i in range(6)]


def label(db: Path, path: Path) -> None:
    backend = FakeBackend(default="positive")
    Labeler(db, SENTIMENT, [backend], RunSettings(), Thresholds(audit_share=0)).run(path)


def gold(tmp_path: Path, rows_: list[dict]) -> Path:
    return write_jsonl(tmp_path / "gold.jsonl", rows_)


def stored_items(db: Path) -> list[tuple]:
    return rows(db, "SELECT item_id, fields::VARCHAR FROM items ORDER BY item_id")


def expected_items() -> list[tuple]:
    return [(t["id"], f'{{"id": "{t["id"]}", "text": "{t["text"]}"}}') for t in TWEETS]


def test_labels_imported_by_id_alone_then_labeling_those_items(tmp_path, db):
    imported = gold(tmp_path, [{"id": "t0", "label": "negative"}, {"id": "t1", "label": "neutral"}])
    summary = import_labels(db, imported, "gold", SENTIMENT)
    assert (summary.added, summary.new_items) == (2, 2)

    label(db, write_jsonl(tmp_path / "items.jsonl", TWEETS))

    assert stored_items(db) == expected_items()
    assert rows(db, "SELECT item_id, label FROM reviews ORDER BY item_id") == [
        ("t0", '"negative"'),
        ("t1", '"neutral"'),
    ]
    assert rows(db, "SELECT count(*) FROM decisions") == [(6,)]


def test_an_import_between_a_runs_check_and_its_inserts_leaves_the_items_content(tmp_path, db):
    """A labeling run checks the ids first, then adds the items chunk by chunk; an import lands
    between."""
    path = write_jsonl(tmp_path / "items.jsonl", TWEETS)
    imported = gold(tmp_path, [{"id": "t3", "label": "negative"}])
    migrate(db)
    keys = inputs.ItemKeys()
    inputs.scan(path, ["text"], keys=keys)
    log.check_ids(db, str(path), keys, len(TWEETS))
    import_labels(db, imported, "gold", SENTIMENT)
    chunk = [Item(item_id=t["id"], fields=t, line=n) for n, t in enumerate(TWEETS, 1)]
    log.insert_items(db, "items", chunk)
    assert stored_items(db) == expected_items()
    assert rows(db, "SELECT item_id FROM reviews") == [("t3",)]


def test_labels_imported_by_id_alone_after_labeling_leave_the_items_as_they_were(tmp_path, db):
    label(db, write_jsonl(tmp_path / "items.jsonl", TWEETS))
    import_labels(db, gold(tmp_path, [{"id": "t2", "label": "negative"}]), "gold", SENTIMENT)
    assert stored_items(db) == expected_items()


def test_a_later_import_with_the_fields_fills_in_the_placeholder(tmp_path, db):
    import_labels(db, gold(tmp_path, [{"id": "t4", "label": "negative"}]), "gold", SENTIMENT)
    full = write_jsonl(
        tmp_path / "full.jsonl", [{"id": "t4", "text": "tweet 4", "label": "neutral"}]
    )
    import_labels(db, full, "ann", SENTIMENT)
    assert stored_items(db) == [("t4", '{"id": "t4", "text": "tweet 4"}')]
    assert rows(db, "SELECT placeholder FROM items") == [(False,)]
    assert rows(db, "SELECT count(*) FROM reviews WHERE item_id = 't4'") == [(2,)]


def test_an_import_with_other_content_for_the_id_still_blocks_labeling(tmp_path, db):
    imported = gold(tmp_path, [{"id": "t0", "text": "another text", "label": "negative"}])
    import_labels(db, imported, "gold", SENTIMENT)
    with pytest.raises(InputError, match="line 1: id 't0' is already in the database"):
        label(db, write_jsonl(tmp_path / "items.jsonl", TWEETS))
    assert rows(db, "SELECT count(*) FROM decisions") == [(0,)]


def test_items_stored_before_placeholders_existed_are_complete_items(db):
    migrate(db, target=3)
    with transaction(db) as con:
        con.execute(
            "INSERT INTO items (item_id, dataset, fields, content_hash)"
            " VALUES ('a', 'd', '{}', 'h')"
        )
    migrate(db)
    assert rows(db, "SELECT item_id, placeholder FROM items") == [("a", False)]
