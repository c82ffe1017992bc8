"""The request body labelagent sends, for each task type and structured-output mode, is the one
recorded in tests/data/requests.json (recorded when instructor's internal request builder still
made the structured-output part, so building it ourselves changed no byte of it)."""

import asyncio
import json
from pathlib import Path

import pytest
from conftest import GUIDELINES

from labelagent.guidelines import load_guideline
from labelagent.llm import RemoteBackend
from labelagent.records import Item, SampleRequest
from labelagent.simserver import SimConfig, SimServer
from labelagent.tasks import build_messages

RECORDED = Path(__file__).parent / "data" / "requests.json"
ITEMS = {
    "sentiment.md": {"text": "I <b>love</b> it"},
    "helpfulness.md": {"prompt": "Capital of France?", "response": "Paris."},
    "ner.md": {"text": "Ada Lovelace met Charles Babbage in London."},
    "preference.md": {"prompt": "Boil an egg?", "response_a": "8 minutes.", "response_b": "No."},
}
MODES = ("tools", "json_schema", "json")


def sent_body(guideline_file: str, mode: str, n: int = 1) -> dict:
    guideline = load_guideline(GUIDELINES / guideline_file)
    item = Item(item_id="x1", fields=ITEMS[guideline_file])
    request = SampleRequest(
        guideline=guideline, item=item, messages=build_messages(guideline, item), n=n, seed=7
    )
    with SimServer(SimConfig(accuracy=1.0)) as server:
        backend = RemoteBackend("openai/sim", api_base=server.url, api_key="sk-test", mode=mode)
        asyncio.run(draw(backend, request))
        return server.history[0]


async def draw(backend: RemoteBackend, request: SampleRequest) -> None:
    try:
        await backend.sample(request)
    finally:
        await backend.aclose()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("guideline_file", sorted(ITEMS))
def test_the_request_sent_is_the_recorded_one(guideline_file, mode):
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    assert sent_body(guideline_file, mode) == recorded[f"{guideline_file} {mode}"]
