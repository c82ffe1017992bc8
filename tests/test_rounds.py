"""How many samples each round asks for, end to end against the simulated server: the size that
is cheapest in dollars for the provider at hand (`labelagent.consistency.round_size`)."""

from conftest import GUIDELINES, rows, write_jsonl

from labelagent.calibration.rule import Thresholds
from labelagent.guidelines import load_guideline
from labelagent.llm import RemoteBackend
from labelagent.pipeline import Labeler, RunSettings
from labelagent.simserver import SimConfig, SimServer

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
PRICED = "openai/gpt-4o-mini"  # in litellm's price table; the simulated server answers for it
K = 5


def corpus(tmp_path, n: int):
    items = [{"id": f"r{i:03d}", "text": f"text number {i}"} for i in range(n)]
    labels = ("positive", "negative", "neutral")
    gold = {item["id"]: {"label": labels[i % 3]} for i, item in enumerate(items)}
    return write_jsonl(tmp_path / "items.jsonl", items), gold


def label(db, path, config: SimConfig) -> tuple[list[dict], RemoteBackend]:
    """One worker, so the requests come in item order; returns the request bodies sent."""
    with SimServer(config) as server:
        backend = RemoteBackend(PRICED, api_base=server.url, api_key="sk-test", mode="json")
        settings = RunSettings(samples=K, stop_confidence=0.85)
        Labeler(db, SENTIMENT, [backend], settings, Thresholds(), concurrency=1).run(path)
        return list(server.history), backend


def item_of(body: dict) -> str:
    return body["messages"][-1]["content"].split('"item_id": "')[1].split('"')[0]


def test_when_the_prompt_dominates_and_n_is_honoured_an_item_is_one_request_of_k(tmp_path, db):
    """The first item's first round is adaptive's (nothing is known of the costs yet); once an
    answer has priced the prompt and the completion, every round asks for all that is left."""
    path, gold = corpus(tmp_path, 12)
    history, backend = label(db, path, SimConfig(accuracy=0.6, gold=gold))
    costs = backend.round_costs()
    assert costs is not None and costs.honours_n
    assert costs.prompt_usd > (K - 2) * costs.sample_usd, "the sentiment prompt dominates"
    asked = [(item_of(body), body.get("n", 1)) for body in history]
    first = [n for item, n in asked if item == "r000"]
    assert first in ([2], [2, K - 2]), "the rest at once if the first two disagree"
    assert asked[len(first) :] == [(f"r{i:03d}", K) for i in range(1, 12)]
    assert rows(db, "SELECT count(*) FROM drafts")[0][0] == 11 * K + sum(first)


def test_without_n_every_sample_pays_its_prompt_so_rounds_stay_small(tmp_path, db):
    """A provider that ignores `n` answers one choice per request: each round asks for the fewest
    samples that could end the sampling, and no item gets a sample it did not need."""
    path, gold = corpus(tmp_path, 12)
    history, backend = label(db, path, SimConfig(accuracy=0.6, gold=gold, honour_n=False))
    assert not backend.supports_n
    assert all(body.get("n", 1) == 1 for body in history[1:]), "one sample per request"
    drawn = dict(rows(db, "SELECT item_id, count(*) FROM drafts GROUP BY 1"))
    assert len(history) == sum(drawn.values()), "one request per sample, none wasted"
    votes = rows(
        db,
        "SELECT item_id, list(label ORDER BY sample_index) FROM drafts GROUP BY 1 ORDER BY 1",
    )
    stopped_at_two = [item for item, labels in votes if len(labels) == 2]
    assert stopped_at_two, "items whose first two samples agree stop there"
    assert all(len(set(labels[:2])) == 1 for item, labels in votes if item in stopped_at_two)
    assert max(drawn.values()) <= K
