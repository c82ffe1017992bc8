"""The prompt is laid out for providers' prompt caches: the guideline and the fixed instructions
first and byte-identical for every item, then what varies (the item's few-shot examples), the
item last."""

import asyncio

import pytest
from conftest import GUIDELINES

from labelagent import prices
from labelagent.guidelines import Guideline, load_guideline
from labelagent.llm import RemoteBackend
from labelagent.records import Example, Item, Sample, SampleRequest
from labelagent.simserver import SimConfig, SimServer
from labelagent.tasks import build_messages, system_prompt

TASKS = {
    "sentiment.md": ({"text": "first item"}, {"text": "second item"}, "positive"),
    "toxicity.md": ({"text": "first item"}, {"text": "second item"}, ["toxic"]),
    "helpfulness.md": (
        {"question": "q1", "answer": "a1"},
        {"question": "q2", "answer": "a2"},
        {"accuracy": 4, "clarity": 3},
    ),
    "ner.md": (
        {"text": "Ada in Paris"},
        {"text": "Bob in Rome"},
        [{"text": "Ada", "label": "PER"}],
    ),
    "preference.md": (
        {"prompt": "p1", "response_a": "a", "response_b": "b"},
        {"prompt": "p2", "response_a": "c", "response_b": "d"},
        "A",
    ),
}


def two_items_with_their_examples(name: str) -> list[tuple[Item, list[Example]]]:
    first, second, label = TASKS[name]
    return [
        (
            Item(item_id="i1", fields=first),
            [Example(item=Item(item_id="e1", fields=first), label=label)],
        ),
        (
            Item(item_id="i2", fields=second),
            [Example(item=Item(item_id="e2", fields=second), label=label)],
        ),
    ]


def send_both(backend: RemoteBackend, guideline: Guideline) -> list[Sample]:
    """Each of the two sentiment items, with its own example, as one request of one sample."""

    async def send() -> list[Sample]:
        drawn = []
        for item, examples in two_items_with_their_examples("sentiment.md"):
            messages = build_messages(guideline, item, examples)
            request = SampleRequest(
                guideline=guideline, item=item, messages=messages, examples=examples, n=1, seed=0
            )
            drawn += await backend.sample(request)
        await backend.aclose()
        return drawn

    return asyncio.run(send())


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("with_examples", [False, True], ids=["zero-shot", "few-shot"])
def test_the_fixed_instructions_come_first_byte_identical_for_every_item(name, with_examples):
    guideline = load_guideline(GUIDELINES / name)
    fixed = system_prompt(guideline)
    assert guideline.body.strip()[:40] in fixed
    for item, examples in two_items_with_their_examples(name):
        shown = examples if with_examples else []
        system, user = build_messages(guideline, item, shown)
        assert system["content"].startswith(fixed)
        varying = system["content"][len(fixed) :]
        assert ('"item_id": "e' in varying) is with_examples, "examples only after the prefix"
        assert "e1" not in fixed and "e2" not in fixed
        assert user["content"].startswith('{"item_id": "' + item.item_id)


def test_the_requests_sent_share_the_prefix_and_carry_each_items_own_examples():
    """JSON mode puts the answer's schema in the system message: it joins the fixed prefix, and
    each item's examples still follow it (they were once the first item's for every item)."""
    guideline = load_guideline(GUIDELINES / "sentiment.md")
    with SimServer(
        SimConfig(gold={"i1": {"label": "positive"}, "i2": {"label": "negative"}})
    ) as server:
        backend = RemoteBackend("openai/sim", api_base=server.url, api_key="sk-test", mode="json")
        send_both(backend, guideline)
        sent = [body["messages"] for body in server.history]
    fixed = system_prompt(guideline)
    first, second = (messages[0]["content"] for messages in sent)
    prefix = first[: first.index("# Examples")]
    assert prefix.startswith(fixed) and "json_schema" in prefix
    assert second.startswith(prefix)
    assert '"item_id": "e1"' in first and '"item_id": "e2"' not in first
    assert '"item_id": "e2"' in second and '"item_id": "e1"' not in second
    assert [messages[-1]["content"][:18] for messages in sent] == [
        '{"item_id": "i1", ',
        '{"item_id": "i2", ',
    ]


ANTHROPIC = "anthropic/claude-haiku-4-5"  # in litellm's price table, with cache read/write rates


def test_anthropic_requests_mark_the_fixed_prefix_for_the_prompt_cache_and_pay_the_cached_rate():
    """Through litellm to an endpoint that speaks Anthropic's Messages API: the fixed prefix is
    a system block of its own with `cache_control`, each item's examples a block after it; the
    first request writes the cache, later ones read it, and drafts record and price that."""
    guideline = load_guideline(GUIDELINES / "sentiment.md")
    gold = {"i1": {"label": "positive"}, "i2": {"label": "negative"}}
    with SimServer(SimConfig(gold=gold)) as server:
        backend = RemoteBackend(
            ANTHROPIC, api_base=server.url.removesuffix("/v1"), api_key="sk-ant-test"
        )

        first, second = send_both(backend, guideline)
        sent = list(server.history)
    fixed = system_prompt(guideline)
    for body, own in zip(sent, ("e1", "e2"), strict=True):
        marked, examples = body["system"]
        assert marked == {"type": "text", "text": fixed, "cache_control": {"type": "ephemeral"}}
        assert "cache_control" not in examples and f'"item_id": "{own}"' in examples["text"]
        assert body["tools"], "the answer's schema as a tool, before the system in the cache"
    assert first.ok and second.ok
    assert first.cached_prompt_tokens == 0 and second.cached_prompt_tokens > 1000
    info = prices.model_info(ANTHROPIC)
    uncached = (
        first.prompt_tokens * info["input_cost_per_token"]
        + first.completion_tokens * info["output_cost_per_token"]
    )
    assert first.cost_usd > uncached, "a cache write costs more than a plain prompt"
    assert second.cost_usd < first.cost_usd, "a cache read is cheaper than the write"
    fresh = second.prompt_tokens - second.cached_prompt_tokens
    expected = (
        fresh * info["input_cost_per_token"]
        + second.cached_prompt_tokens * info["cache_read_input_token_cost"]
        + second.completion_tokens * info["output_cost_per_token"]
    )
    assert second.cost_usd == pytest.approx(expected)
