"""The prompt is laid out for providers' prompt caches: the guideline and the fixed instructions
first and byte-identical for every item, then what varies (the item's few-shot examples), the
item last."""

import asyncio

import pytest
from conftest import GUIDELINES

from agent.guidelines import load_guideline
from agent.llm import RemoteBackend
from agent.records import Example, Item, SampleRequest
from agent.simserver import SimConfig, SimServer
from agent.tasks import build_messages, system_prompt

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

        async def send() -> None:
            for item, examples in two_items_with_their_examples("sentiment.md"):
                messages = build_messages(guideline, item, examples)
                request = SampleRequest(
                    guideline=guideline,
                    item=item,
                    messages=messages,
                    examples=examples,
                    n=1,
                    seed=0,
                )
                await backend.sample(request)
            await backend.aclose()

        asyncio.run(send())
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
