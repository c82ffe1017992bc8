"""Guidelines: the shipped examples load as documented; broken files are refused with a message
that names the file and the problem; the content hash tracks the text."""

import json
from pathlib import Path

import pytest

from labelagent.errors import GuidelineError
from labelagent.guidelines import load_guideline, parse_guideline
from labelagent.paths import DEMO_DATA, resource_dir

GUIDELINES = resource_dir("guidelines")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

BANKING77_SOME = {
    "card_arrival",
    "card_delivery_estimate",
    "get_physical_card",
    "Refund_not_showing_up",
    "reverted_card_payment?",
    "balance_not_updated_after_cheque_or_cash_deposit",
    "verify_my_identity",
}

# name -> (task, labels: exact list, or a (count, required subset) pair, fields)
SHIPPED = {
    "sentiment": ("classification", ["negative", "neutral", "positive"], ["text"]),
    "toxicity": ("classification", ["hate_speech", "offensive_language", "neither"], ["text"]),
    "intent": ("classification", (77, BANKING77_SOME), ["text"]),
    "ner": (
        "spans",
        ["person", "location", "group", "creative-work", "corporation", "product"],
        ["text"],
    ),
    "preference": ("preference", ["A", "B"], ["prompt", "response_a", "response_b"]),
    "helpfulness": ("rating", [], ["prompt", "response"]),
    "card_support": (
        "classification",
        ["card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed"],
        ["text"],
    ),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_guideline_loads(name):
    task, labels, fields = SHIPPED[name]
    g = load_guideline(GUIDELINES / f"{name}.md")
    assert g.name == name
    assert g.task == task
    assert g.fields == fields
    if isinstance(labels, tuple):
        count, some = labels
        assert len(g.labels) == count
        assert some <= set(g.labels)
    else:
        assert g.label_names == labels
    assert all(g.labels.values()), "every label has a one-line definition"
    assert len(g.body) > 500, "the body carries real rules and worked examples"
    assert "Worked examples" in g.body
    assert len(g.content_hash) == 16


def test_rating_guideline_has_scale_and_dimensions():
    g = load_guideline(GUIDELINES / "helpfulness.md")
    assert (g.scale.min, g.scale.max) == (1, 5)
    assert list(g.dimensions) == ["helpfulness", "harmlessness"]
    assert all(g.dimensions.values())


def test_every_shipped_guideline_is_tested():
    assert {p.stem for p in GUIDELINES.glob("*.md")} == set(SHIPPED)


# --- demo data bundled in the package ---------------------------------------------------------

DEMO = {
    "intent_sample.jsonl": ("intent", 60),
    "preference_sample.jsonl": ("preference", 20),
    "card_support_sample.jsonl": ("card_support", 40),
}


@pytest.mark.parametrize("filename", sorted(DEMO))
def test_demo_data_fits_its_guideline(filename):
    guideline, count = DEMO[filename]
    g = load_guideline(GUIDELINES / f"{guideline}.md")
    lines = (DEMO_DATA / filename).read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines]
    assert len(items) == count
    assert len({item["id"] for item in items}) == count
    for item in items:
        assert all(isinstance(item[f], str) and item[f] for f in g.fields)
        assert item["label"] in g.labels


def test_demo_data_has_license_notes():
    notes = (DEMO_DATA / "LICENSE_NOTES.md").read_text(encoding="utf-8")
    for filename in DEMO:
        assert filename in notes
    assert "Creative Commons Attribution 4.0" in notes
    assert "Copyright (c) 2022 Anthropic" in notes


# --- the shipped guidelines against the real datasets they are written for --------------------

DATASETS = [
    ("sentiment", "tweeteval_sentiment"),
    ("toxicity", "davidson_hate_offensive"),
    ("intent", "banking77"),
    ("ner", "wnut17_ner"),
    ("preference", "hh_rlhf_harmless"),
    ("preference", "arena_judges"),
]


@pytest.mark.parametrize(("guideline", "dataset"), DATASETS)
def test_guideline_covers_its_dataset(guideline, dataset):
    path = SHARED_DATA / dataset / "items.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not available here")
    g = load_guideline(GUIDELINES / f"{guideline}.md")
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(f in item for item in items for f in g.fields)
    if g.task == "spans":
        gold = {tag[2:] for item in items for tag in item["tags"] if tag != "O"}
    else:
        gold = {str(item["label"]) for item in items}
    assert gold <= set(g.labels)


# --- broken guidelines ------------------------------------------------------------------------


def _front(meta: str, body: str = "# Rules\n\nSome rules.\n") -> bytes:
    return f"---\n{meta}\n---\n{body}".encode()


ALIAS_BOMB = "\n".join(
    ["task: classification", "labels: [a, b]", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol"]']
    + [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]
)

BROKEN = [
    ("no front matter", b"# Sentiment\n\nLabel the text.\n", "no front matter"),
    ("front matter never closed", b"---\ntask: spans\nlabels: [a, b]\n", "no front matter"),
    ("bad YAML", _front("task: classification\nlabels: [a, b"), "not valid YAML"),
    ("front matter not a mapping", _front("- classification\n- spans"), "must be a mapping"),
    ("unknown task", _front("task: summarisation\nlabels: [a, b]"), "'summarisation' is unknown"),
    ("missing task", _front("labels: [a, b]"), "task None is unknown"),
    ("no labels", _front("task: classification"), "at least two labels"),
    ("one label", _front("task: classification\nlabels: {spam: Unwanted mail.}"), "two labels"),
    ("multilabel one label", _front("task: multilabel\nlabels: [a]"), "at least two labels"),
    ("labels not a mapping", _front("task: classification\nlabels: positive"), "'labels' must map"),
    ("empty label name", _front("task: multilabel\nlabels: {'': x, b: y}"), "label name is empty"),
    ("fields not a list", _front("task: classification\nlabels: [a, b]\nfields: text"), "'fields'"),
    ("fields empty", _front("task: classification\nlabels: [a, b]\nfields: []"), "'fields'"),
    ("rating without scale", _front("task: rating\ndimensions: [helpfulness]"), "needs 'scale"),
    ("rating scale without max", _front("task: rating\nscale: {min: 1}\ndimensions: [h]"), "scale"),
    (
        "rating scale not numbers",
        _front("task: rating\nscale: {min: low, max: high}\ndimensions: [h]"),
        "whole numbers",
    ),
    (
        "rating min equals max",
        _front("task: rating\nscale: {min: 3, max: 3}\ndimensions: [h]"),
        "min (3) must be below max (3)",
    ),
    (
        "rating min above max",
        _front("task: rating\nscale: {min: 5, max: 1}\ndimensions: [h]"),
        "min (5) must be below max (1)",
    ),
    ("rating without dimensions", _front("task: rating\nscale: {min: 1, max: 5}"), "'dimensions'"),
    (
        "dimension name with a space",
        _front("task: rating\nscale: {min: 1, max: 5}\ndimensions: {harm less: Is it safe}"),
        "dimension 'harm less' must be a plain name",
    ),
    (
        "spans with two fields",
        _front("task: spans\nlabels: [person, place]\nfields: [title, text]"),
        "marks one text field",
    ),
    ("spans without labels", _front("task: spans"), "labels"),
    (
        "label given twice in a list",
        _front("task: multilabel\nlabels: [a, b, a]"),
        "'a' is given twice",
    ),
    ("YAML alias", _front("task: classification\nx: &l [a, b]\nlabels: *l"), "aliases"),
    ("YAML alias bomb", _front(ALIAS_BOMB), "aliases"),
    (
        "front matter nested too deeply",
        _front("task: classification\nlabels: " + "[" * 10_000 + "]" * 10_000),
        "nested too deeply",
    ),
    (
        "label with a control character",
        _front('task: classification\nlabels: ["a\\e[31m", b]'),
        "label 'a\\x1b[31m' contains a control character",
    ),
    (
        "dimension given twice in a list",
        _front("task: rating\nscale: {min: 1, max: 5}\ndimensions: [h, h]"),
        "dimension 'h' is given twice",
    ),
    (
        "larger than the limit",
        _front("task: classification\nlabels: [a, b]", "x" * 1_100_000),
        "over the limit of 1,000,000 bytes",
    ),
    (
        "non-UTF-8 file",
        "---\ntask: classification\nlabels: [positif, négatif]\n---\nRègles\n".encode("latin-1"),
        "not valid UTF-8",
    ),
]


@pytest.mark.parametrize(("case", "content", "problem"), BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_guideline_is_rejected(tmp_path, case, content, problem):
    path = tmp_path / "broken.md"
    path.write_bytes(content)
    with pytest.raises(GuidelineError) as excinfo:
        load_guideline(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: "), message
    assert problem in message, message
    assert excinfo.value.hint


def test_missing_file_is_rejected(tmp_path):
    path = tmp_path / "nowhere.md"
    with pytest.raises(GuidelineError, match="no such guideline file") as excinfo:
        load_guideline(path)
    assert str(path) in str(excinfo.value)


def test_a_directory_is_not_a_guideline(tmp_path):
    with pytest.raises(GuidelineError, match="is a directory, not a guideline file") as excinfo:
        load_guideline(tmp_path)
    assert str(tmp_path) in str(excinfo.value)


def test_a_guideline_just_under_the_size_limit_loads(tmp_path):
    path = tmp_path / "long.md"
    path.write_bytes(_front("task: classification\nlabels: [a, b]", "x" * 999_000))
    assert len(load_guideline(path).body) == 999_000


def test_minimal_guidelines_get_defaults():
    g = parse_guideline("---\ntask: preference\n---\nPick the better reply.\n", "p.md")
    assert g.label_names == ["A", "B"]
    assert g.fields == ["prompt", "response_a", "response_b"]
    assert g.name == "p"
    g = parse_guideline("---\ntask: spans\nlabels: [drug]\n---\nMark drug names.\n", "d.md")
    assert g.fields == ["text"]
    assert g.label_names == ["drug"]


# --- content hash -----------------------------------------------------------------------------

LF = "---\nname: s\ntask: classification\nlabels: [pos, neg]\n---\n# Rules\n\nBe careful.\n"


def test_content_hash_changes_when_the_text_changes():
    base = parse_guideline(LF).content_hash
    assert parse_guideline(LF).content_hash == base
    assert parse_guideline(LF.replace("careful", "careful!")).content_hash != base
    assert parse_guideline(LF.replace("[pos, neg]", "[pos, neg, mixed]")).content_hash != base


def test_content_hash_ignores_crlf(tmp_path):
    (tmp_path / "lf.md").write_bytes(LF.encode())
    (tmp_path / "crlf.md").write_bytes(LF.replace("\n", "\r\n").encode())
    lf, crlf = load_guideline(tmp_path / "lf.md"), load_guideline(tmp_path / "crlf.md")
    assert lf.content_hash == crlf.content_hash
    assert crlf.labels == lf.labels
    assert crlf.task == lf.task


# --- known parser gaps, reported to the lead; strict so that a fix shows up here --------------


def test_crlf_body_equals_lf_body():
    assert parse_guideline(LF.replace("\n", "\r\n")).body == parse_guideline(LF).body


def test_yes_no_labels_keep_their_spelling():
    g = parse_guideline("---\ntask: classification\nlabels: [yes, no]\n---\nb\n")
    assert g.label_names == ["yes", "no"]


def test_fractional_scale_is_rejected():
    with pytest.raises(GuidelineError, match="whole numbers"):
        parse_guideline("---\ntask: rating\nscale: {min: 1.5, max: 5}\ndimensions: [h]\n---\nb\n")


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf" + LF.encode())
    assert load_guideline(path).task == "classification"
