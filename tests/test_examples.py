"""Few-shot examples: the log's trusted labels shown in the prompt, never an item's own label nor a
model's, chosen the same way on every run over the same log, and part of the prompt's hash."""

import json
from pathlib import Path

import pytest
from conftest import GUIDELINES, rows, write_jsonl
from fakes import FakeBackend
from typer.testing import CliRunner

from labelagent.calibration.rule import Thresholds
from labelagent.cli import app
from labelagent.errors import ConfigError
from labelagent.examples import ExamplePicker, ExampleSettings, trusted_pool
from labelagent.guidelines import load_guideline, parse_guideline
from labelagent.local_model import prompt_segments
from labelagent.pipeline import Labeler, RunSettings
from labelagent.records import Example, Item
from labelagent.simserver import SimConfig, SimServer
from labelagent.tasks import build_messages

SENTIMENT = load_guideline(GUIDELINES / "sentiment.md")
GOLD = [
    {"id": "g1", "text": "I love this phone, wonderful screen", "label": "positive"},
    {"id": "g2", "text": "terrible battery, I hate it", "label": "negative"},
    {"id": "g3", "text": "the parcel came on tuesday", "label": "neutral"},
    {"id": "g4", "text": "wonderful service, love it", "label": "positive"},
    {"id": "g5", "text": "awful support and a terrible wait", "label": "negative"},
]


def cli(*args: object) -> CliRunner:
    return CliRunner().invoke(app, [str(a) for a in args])


def import_gold(tmp_path: Path, db: Path, data: list[dict], model: bool = False) -> None:
    path = write_jsonl(tmp_path / "gold.jsonl", data)
    extra = ["--model"] if model else []
    who = "judge" if model else "gold"
    result = cli(
        "import-labels", path, "--annotator", who, *extra, "-g", SENTIMENT.path, "--db", db
    )
    assert result.exit_code == 0, result.output


def example(item_id: str, text: str, label: str) -> Example:
    return Example(item=Item(item_id=item_id, fields={"text": text}), label=label)


TOPICS = parse_guideline(
    "---\nname: topics\ntask: multilabel\nlabels: {sports: Sport., money: Money.}\n---\nTopics.\n"
)
POOL = [example(r["id"], r["text"], r["label"]) for r in GOLD]


@pytest.mark.parametrize("selector", ["similar", "diverse", "fixed"])
def test_an_item_is_never_an_example_for_itself(selector):
    picker = ExamplePicker(SENTIMENT, POOL, ExampleSettings(n=4, selector=selector))
    for e in POOL:
        chosen = picker.for_item(e.item)
        assert len(chosen) == 4
        assert e.item.item_id not in [c.item.item_id for c in chosen]


def test_similar_examples_are_the_most_alike_first():
    picker = ExamplePicker(SENTIMENT, POOL, ExampleSettings(n=2, selector="similar"))
    item = Item(item_id="new", fields={"text": "terrible wait, I hate it"})
    assert [c.item.item_id for c in picker.for_item(item)] == ["g2", "g5"]


def test_diverse_examples_cover_every_label_and_are_the_same_on_every_run():
    picker = ExamplePicker(SENTIMENT, POOL, ExampleSettings(n=3, selector="diverse"))
    chosen = picker.for_item(Item(item_id="new", fields={"text": "x"}))
    assert sorted(c.label for c in chosen) == ["negative", "neutral", "positive"]
    again = ExamplePicker(SENTIMENT, list(reversed(POOL)), ExampleSettings(3, "diverse"))
    assert again.for_item(Item(item_id="new", fields={"text": "x"})) == chosen


def test_an_unknown_selector_is_refused():
    with pytest.raises(ConfigError, match="similar, diverse, fixed"):
        ExampleSettings(n=2, selector="nearest")


@pytest.mark.parametrize(
    "guideline, fields, label",
    [
        (SENTIMENT, {"text": "a <b>bold</b> claim"}, "positive"),
        (TOPICS, {"text": "a <b>bold</b> claim"}, ["sports"]),
        ("helpfulness.md", {"question": "<q>", "answer": "a"}, {"accuracy": 4, "clarity": 3}),
        ("ner.md", {"text": "a <b>bold</b> claim"}, [{"text": "bold", "label": "PER"}]),
        ("preference.md", {"prompt": "<p>", "response_a": "a", "response_b": "b"}, "A"),
    ],
)
def test_every_task_shows_its_examples_as_escaped_data_before_the_item(guideline, fields, label):
    g = load_guideline(GUIDELINES / guideline) if isinstance(guideline, str) else guideline
    shown = Example(item=Item(item_id="ex1", fields=fields), label=label)
    system, user = build_messages(g, Item(item_id="i", fields=fields), [shown])
    content = system["content"]
    assert '"item_id": "ex1"' in content
    assert f'Answer: {{"label": {json.dumps(label)}}}' in content
    assert "<b>" not in content and "<q>" not in content and "<p>" not in content
    assert content.index("# The item") < content.index("# Examples"), "after the fixed prefix"
    assert "ex1" not in user["content"]
    no_examples, _ = build_messages(g, Item(item_id="i", fields=fields))
    assert "# Examples" not in no_examples["content"]


def test_the_embedded_model_sees_examples_before_the_item_with_their_answers():
    shown = [{"fields": {"text": "great phone"}, "label": "positive"}]
    head, item, cue = prompt_segments(SENTIMENT, {"text": "I love it"}, None, shown)
    assert head.rstrip().endswith('Text: "great phone"\nLabel: positive')
    assert item.strip() == 'Text: "I love it"'
    assert cue.strip() == "Label:"


def test_the_embedded_model_sees_the_item_in_its_examples_own_pattern():
    """A 270M base model continues a pattern: a blank line before the item's cue, which no example
    has, cost 15 points of accuracy on tweeteval_sentiment (45% against 30%, 40 items)."""
    shown = [{"fields": {"text": "great phone"}, "label": "positive"}]
    prompt = "".join(prompt_segments(SENTIMENT, {"text": "I love it"}, None, shown))
    assert 'Text: "great phone"\nLabel: positive\n' in prompt
    assert prompt.endswith('Text: "I love it"\nLabel:')


def test_asking_for_examples_without_trusted_labels_says_what_to_do(tmp_path, db):
    import_gold(tmp_path, db, GOLD, model=True)  # a model's labels are never examples
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "n1", "text": "hello"}])
    result = cli(
        "label", items, "-g", SENTIMENT.path, "--db", db, "--model", "local", "--examples", "4"
    )
    assert result.exit_code == 1
    assert "needs trusted labels" in result.output
    assert "Review some items" in result.output
    assert "Traceback" not in result.output


def test_label_with_examples_through_the_cli_records_each_prompts_examples(tmp_path, db):
    import_gold(tmp_path, db, GOLD)
    new = [{"id": "n1", "text": "I hate the terrible wait"}, {"id": "n2", "text": "love it"}]
    path = write_jsonl(tmp_path / "items.jsonl", new)
    gold = {"n1": {"label": "negative"}, "n2": {"label": "positive"}}
    with SimServer(SimConfig(accuracy=1.0, gold=gold)) as server:
        result = cli(
            "label", path, "-g", SENTIMENT.path, "--db", db, "--model", "openai/sim",
            "--api-base", server.url, "--mode", "json", "--examples", "3",
            "--example-selector", "diverse",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = rows(db, "SELECT DISTINCT item_id, CAST(example_ids AS VARCHAR) FROM drafts")
    assert sorted(item for item, _ in shown) == ["n1", "n2"]
    assert all(len(json.loads(ids)) == 3 for _, ids in shown)
    (settings,) = rows(
        db, "SELECT CAST(settings->'examples' AS VARCHAR) FROM runs WHERE command = 'label'"
    )
    assert json.loads(settings[0])["selector"] == "diverse"


def label(db: Path, path: Path, backend: FakeBackend, examples: ExampleSettings | None) -> Labeler:
    labeler = Labeler(
        db, SENTIMENT, [backend], RunSettings(), Thresholds(audit_share=0.0), examples=examples
    )
    labeler.run(path)
    return labeler


def test_a_run_with_examples_is_its_own_prompt_configuration_and_records_its_examples(tmp_path, db):
    import_gold(tmp_path, db, GOLD)
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": r["id"], "text": r["text"]} for r in GOLD])
    plain = label(db, path, FakeBackend(default="positive"), None)
    backend = FakeBackend(default="positive")
    shots = label(db, path, backend, ExampleSettings(n=2, selector="similar"))
    assert shots.prompt_hash != plain.prompt_hash
    assert backend.samples_drawn > 0, "decided under another prompt: labeled again"
    for request in backend.history:
        ids = [e.item.item_id for e in request.examples]
        assert len(ids) == 2 and request.item.item_id not in ids
        assert f'"item_id": "{request.item.item_id}"' not in request.messages[0]["content"]
    recorded = rows(
        db,
        "SELECT DISTINCT item_id, CAST(example_ids AS VARCHAR) FROM drafts"
        f" WHERE prompt_hash = '{shots.prompt_hash}'",
    )
    assert len(recorded) == len(GOLD)
    for item_id, ids in recorded:
        assert item_id not in json.loads(ids) and len(json.loads(ids)) == 2
    assert rows(
        db,
        "SELECT count(*) FROM drafts WHERE example_ids IS NOT NULL"
        f" AND prompt_hash = '{plain.prompt_hash}'",
    ) == [(0,)]
    again = FakeBackend(default="positive")
    rerun = label(db, path, again, ExampleSettings(n=2, selector="similar"))
    assert rerun.prompt_hash == shots.prompt_hash and again.samples_drawn == 0


def test_a_new_trusted_label_changes_the_prompt_hash(tmp_path, db):
    import_gold(tmp_path, db, GOLD[:3])
    first = ExamplePicker(SENTIMENT, trusted_pool(db, SENTIMENT), ExampleSettings(2))
    import_gold(tmp_path, db, GOLD[3:])
    second = ExamplePicker(SENTIMENT, trusted_pool(db, SENTIMENT), ExampleSettings(2))
    other_n = ExamplePicker(SENTIMENT, trusted_pool(db, SENTIMENT), ExampleSettings(3))
    assert len({first.setting_hash, second.setting_hash, other_n.setting_hash}) == 3


def test_the_evaluation_shows_accuracy_and_coverage_by_example_setting(tmp_path, db):
    from labelagent.evals.evaluate import evaluate
    from labelagent.evals.report import teaching_rows

    import_gold(tmp_path, db, GOLD)
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": r["id"], "text": r["text"]} for r in GOLD])
    label(db, path, FakeBackend(default="positive"), None)
    label(db, path, FakeBackend(by_item={r["id"]: r["label"] for r in GOLD}), ExampleSettings(2))
    (result,) = evaluate(db, n_resamples=10).as_dict()["guidelines"]
    assert [
        (r["trusted_labels"], r["examples"], r["decided"], r["coverage"], r["accuracy"])
        for r in result["teaching"]
    ] == [(0, 0, 5, 1.0, 0.4), (5, 2, 5, 1.0, 1.0)]
    assert teaching_rows(result)[1]["examples"] == "2 similar"


def test_the_report_draws_accuracy_and_coverage_by_trusted_labels(tmp_path, db):
    import_gold(tmp_path, db, GOLD[:3])
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": r["id"], "text": r["text"]} for r in GOLD])
    right = FakeBackend(by_item={r["id"]: r["label"] for r in GOLD})
    label(db, path, right, ExampleSettings(2))
    import_gold(tmp_path, db, GOLD[3:])
    label(db, path, right, ExampleSettings(2))
    report = tmp_path / "report.html"
    result = cli("eval", "--db", db, "--html", report)
    assert result.exit_code == 0, result.output
    html = report.read_text()
    section = html[html.index("<h3>Examples from reviews</h3>") :]
    assert '<img src="data:image/png;base64,' in section.split("</section>")[0]
    assert 'alt="Accuracy and coverage by trusted labels available"' in section


def test_eval_can_leave_out_items_whose_labels_were_shown_as_examples(tmp_path, db):
    import_gold(tmp_path, db, GOLD)
    new = [{"id": "n1", "text": "I hate the terrible wait"}, {"id": "n2", "text": "love it"}]
    items = [{"id": r["id"], "text": r["text"]} for r in GOLD] + new
    path = write_jsonl(tmp_path / "items.jsonl", items)
    right = {r["id"]: r["label"] for r in GOLD} | {"n1": "positive", "n2": "negative"}
    label(db, path, FakeBackend(by_item=right), ExampleSettings(n=4))
    import_gold(tmp_path, db, [{**new[0], "label": "negative"}, {**new[1], "label": "positive"}])

    def model_figures(*option: str) -> tuple[int, float, int]:
        result = cli("eval", "--db", db, "--reference", "gold", "--json", *option)
        assert result.exit_code == 0, result.output
        (g,) = json.loads(result.output)["guidelines"]
        (model,) = [c for c in g["comparisons"] if c["kind"] == "model"]
        return model["n"], model["metrics"]["accuracy"]["value"], g["left_out_as_examples"]

    # Every gold item was another item's example, so its right label vouches for nothing.
    assert model_figures() == (7, round(5 / 7, 4), 0)
    assert model_figures("--exclude-example-neighbours") == (2, 0.0, 5)


def test_similar_examples_can_be_ranked_by_an_embedding_model(tmp_path, db):
    import_gold(tmp_path, db, GOLD)
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": "n1", "text": "terrible wait, I hate it"}])
    with SimServer(SimConfig(accuracy=1.0, gold={"n1": {"label": "negative"}})) as server:
        result = cli(
            "label", path, "-g", SENTIMENT.path, "--db", db, "--model", "openai/sim",
            "--api-base", server.url, "--mode", "json", "--examples", "2",
            "--embedding-model", "openai/sim-embed", "--embedding-api-base", server.url,
        )  # fmt: skip
        embedded = server.counts["embeddings"]
    assert result.exit_code == 0, result.output
    assert embedded == 2, "the pool once, then the item"
    ((ids,),) = rows(db, "SELECT DISTINCT CAST(example_ids AS VARCHAR) FROM drafts")
    assert json.loads(ids) == ["g2", "g5"]
    ((settings,),) = rows(
        db, "SELECT CAST(settings->'examples' AS VARCHAR) FROM runs WHERE command = 'label'"
    )
    assert json.loads(settings)["embedding_model"] == "openai/sim-embed"
    result = cli("eval", "--db", db, "--json")
    (g,) = json.loads(result.output)["guidelines"]
    assert [row["selector"] for row in g["teaching"]] == ["similar by openai/sim-embed"]


@pytest.mark.parametrize(
    "model, where",
    [("openai/no-such-embedder", None), ("openai/sim-embed", "http://127.0.0.1:9/v1")],
)
def test_an_unknown_or_unreachable_embedding_model_stops_before_labeling(
    tmp_path, db, model, where
):
    import_gold(tmp_path, db, GOLD)
    path = write_jsonl(tmp_path / "items.jsonl", [{"id": "n1", "text": "hello"}])
    with SimServer(SimConfig(accuracy=1.0)) as server:
        result = cli(
            "label", path, "-g", SENTIMENT.path, "--db", db, "--model", "openai/sim",
            "--api-base", server.url, "--mode", "json", "--examples", "2",
            "--embedding-model", model, "--embedding-api-base", where or server.url,
        )  # fmt: skip
        asked = server.counts["ok"]
    assert result.exit_code == 1
    assert f"embedding model {model}" in result.output
    assert "--embedding-model" in result.output and "Traceback" not in result.output
    assert asked == 0
    assert rows(db, "SELECT count(*) FROM drafts") == [(0,)]


def test_an_embedding_model_ranks_only_similar_examples():
    with pytest.raises(ConfigError, match="--embedding-model ranks similar examples"):
        ExampleSettings(2, "diverse", embedding_model="openai/sim-embed")
