"""The queue's rules without a browser: leases, no double reviews, overlap, adjudication."""

from datetime import timedelta

import pytest
from conftest import GUIDELINES, write_jsonl
from fakes import FakeBackend

from labelagent.calibration.rule import Thresholds
from labelagent.guidelines import load_guideline
from labelagent.pipeline import Labeler, RunSettings
from labelagent.review import adjudication, queue
from labelagent.review.queue import ClaimLost
from labelagent.store.db import transaction


@pytest.fixture
def escalated_db(tmp_path, db):
    """Twelve items, every one escalated (the two samples split)."""
    items = write_jsonl(
        tmp_path / "items.jsonl", [{"id": f"q{i:02d}", "text": f"t{i}"} for i in range(12)]
    )
    model = FakeBackend(default="positive")
    model.enqueue(*(["positive", "negative"] * 30))
    settings = RunSettings(samples=2, stop_confidence=1.0)
    path = GUIDELINES / "sentiment.md"
    Labeler(
        db,
        load_guideline(path),
        [model],
        settings,
        Thresholds(audit_share=0),
    ).run(items)
    return db


def test_two_reviewers_never_hold_the_same_item(escalated_db):
    first = {i.item_id for i in queue.claim(escalated_db, "ann", size=5)}
    second = {i.item_id for i in queue.claim(escalated_db, "bob", size=5)}
    assert len(first) == len(second) == 5
    assert not first & second


def test_an_expired_lease_returns_the_item_to_the_queue(escalated_db):
    taken = queue.claim(escalated_db, "ann", size=12, lease=timedelta(seconds=-1))
    assert len(taken) == 12
    assert len(queue.claim(escalated_db, "bob", size=12)) == 12


def test_a_reviewer_cannot_review_the_same_item_twice(escalated_db):
    item = queue.claim(escalated_db, "ann", size=1)[0]
    queue.submit(escalated_db, "ann", item, "correct", "neutral", seconds_on_screen=1.0)
    with pytest.raises(ClaimLost, match="already reviewed"):
        queue.submit(escalated_db, "ann", item, "correct", "neutral", seconds_on_screen=1.0)
    with transaction(escalated_db) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone() == (1,)
    assert item.item_id not in {i.item_id for i in queue.claim(escalated_db, "ann", size=12)}


def test_overlap_asks_two_people_and_a_split_goes_to_adjudication(escalated_db):
    assert queue.set_settings(escalated_db, "sentiment", overlap=2, blind_share=0.0) == 1
    item = queue.claim(escalated_db, "ann", size=1)[0]
    queue.submit(escalated_db, "ann", item, "accept", "positive")
    again = next(i for i in queue.claim(escalated_db, "bob", size=12) if i.item_id == item.item_id)
    queue.submit(escalated_db, "bob", again, "correct", "negative")
    cases = adjudication.cases(escalated_db)
    assert [c.item.item_id for c in cases] == [item.item_id]
    assert {r.reviewer for r in cases[0].reviews} == {"ann", "bob"}
    queue.submit(escalated_db, "cat", cases[0].item, "adjudicate", "neutral")
    with transaction(escalated_db) as con:
        final = con.execute(
            "SELECT label, reviewer FROM final_labels WHERE item_id = ?", [item.item_id]
        ).fetchall()
    assert final == [('"neutral"', "cat")]
    assert adjudication.cases(escalated_db) == []


def test_a_label_outside_the_guideline_is_refused(escalated_db):
    item = queue.claim(escalated_db, "ann", size=1)[0]
    with pytest.raises(queue.ConfigError, match="does not fit the guideline"):
        queue.submit(escalated_db, "ann", item, "correct", "ecstatic")


def test_a_reviewer_whose_lease_expired_cannot_save_after_another_took_the_item(escalated_db):
    [item] = queue.claim(escalated_db, "ann", size=1, lease=timedelta(seconds=-1))
    again = next(i for i in queue.claim(escalated_db, "bob", size=12) if i.item_id == item.item_id)
    queue.submit(escalated_db, "bob", again, "correct", "negative")
    with pytest.raises(ClaimLost, match="expired"):
        queue.submit(escalated_db, "ann", item, "accept", "positive")
    with transaction(escalated_db) as con:
        rows = con.execute("SELECT reviewer FROM reviews WHERE item_id = ?", [item.item_id])
        assert rows.fetchall() == [("bob",)], "an overlap-1 item gets one review"
