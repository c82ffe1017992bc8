"""Self-consistency and routing, by example: how samples are voted into a verdict, when sampling
stops, and why a verdict is accepted or escalated to a person."""

from dataclasses import replace
from math import comb

import pytest

from labelagent.calibration.rule import Thresholds, audit_draw, route
from labelagent.consistency import (
    RoundCosts,
    build_verdict,
    leader_probability,
    next_batch,
    round_size,
    should_stop,
    support,
)
from labelagent.guidelines import parse_guideline
from labelagent.records import Item, Sample, Verdict
from labelagent.tasks import aggregate, parse_answer

SENTIMENT = parse_guideline(
    """---
name: sentiment
task: classification
labels: [positive, negative, neutral]
---
Label the writer's overall attitude.
"""
)

PREFERENCE = parse_guideline("---\nname: pref\ntask: preference\n---\nPick the better one.\n")

TOXICITY = parse_guideline(
    "---\nname: tox\ntask: multilabel\nlabels: [toxic, insult, threat]\n---\nEvery harm.\n"
)

HELPFULNESS = parse_guideline(
    """---
name: helpfulness
task: rating
scale: {min: 1, max: 5}
fields: [prompt, response]
dimensions: [helpful, harmless]
---
Score the response.
"""
)

NER = parse_guideline("---\nname: ner\ntask: spans\nlabels: [person, location]\n---\nMark.\n")

FAILED = object()  # stands for a failed sample in the helpers below


def samples(*labels, model="m", confidence=None) -> list[Sample]:
    """Samples from one model; FAILED makes a failed one."""
    return [
        Sample(model=model, sample_index=i, error="invalid answer: no JSON")
        if label is FAILED
        else Sample(model=model, sample_index=i, label=label, confidence=confidence)
        for i, label in enumerate(labels)
    ]


def span(start, end, label, text):
    return {"start": start, "end": end, "label": label, "text": text}


# --- aggregation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "majority", "agreement"),
    [
        pytest.param(["positive"] * 3, "positive", 1.0, id="unanimous"),
        pytest.param(["negative", "positive", "negative"], "negative", 2 / 3, id="two-of-three"),
        pytest.param(
            ["neutral", "negative", "positive", "neutral"], "neutral", 0.5, id="plurality"
        ),
        pytest.param(
            ["negative", "positive"], "positive", 0.5, id="tie-goes-to-first-in-guideline"
        ),
        pytest.param(["neutral", "negative"], "negative", 0.5, id="tie-not-to-first-seen"),
        pytest.param(["neutral", "negative", "positive"], "positive", 1 / 3, id="three-way-tie"),
    ],
)
def test_classification_plurality(labels, majority, agreement):
    assert aggregate(SENTIMENT, labels) == (majority, pytest.approx(agreement))


def test_preference_tie_goes_to_a():
    assert aggregate(PREFERENCE, ["B", "A"]) == ("A", 0.5)
    assert aggregate(PREFERENCE, ["B", "B", "A"]) == ("B", pytest.approx(2 / 3))


@pytest.mark.parametrize(
    ("labels", "majority", "agreement"),
    [
        pytest.param([["toxic"]] * 3, ["toxic"], 1.0, id="unanimous"),
        pytest.param(
            [["toxic", "insult"], ["toxic"], ["insult", "toxic"], []],
            ["toxic"],
            0.5,
            id="per-label-majority-half-is-not-enough",
        ),
        pytest.param(
            [["threat", "toxic"], ["toxic", "threat"], ["insult"]],
            ["toxic", "threat"],
            2 / 3,
            id="min-agreement-over-named-labels",
        ),
        pytest.param(
            [["toxic", "insult"], ["insult", "threat"], ["threat", "toxic"]],
            ["toxic", "insult", "threat"],
            2 / 3,
            id="majority-set-no-sample-gave",
        ),
        pytest.param([[], [], ["insult"]], [], 2 / 3, id="majority-says-none"),
        pytest.param([[], []], [], 1.0, id="all-empty"),
    ],
)
def test_multilabel_votes_per_label(labels, majority, agreement):
    assert aggregate(TOXICITY, labels) == (majority, pytest.approx(agreement))


@pytest.mark.parametrize(
    ("helpful", "harmless", "majority", "agreement"),
    [
        pytest.param([4, 4, 4], [5, 5, 5], {"helpful": 4, "harmless": 5}, 1.0, id="unanimous"),
        pytest.param(
            [4, 4, 2], [5, 3, 3], {"helpful": 4, "harmless": 3}, 2 / 3, id="mode-per-dimension"
        ),
        pytest.param(
            [2, 2, 4, 4, 5], [5] * 5, {"helpful": 4, "harmless": 5}, 0.4, id="tie-nearest-median"
        ),
        pytest.param(
            [1, 1, 5, 5, 3], [5] * 5, {"helpful": 1, "harmless": 5}, 0.4, id="equidistant-lower"
        ),
        pytest.param([3, 4], [2, 2], {"helpful": 3, "harmless": 2}, 0.5, id="two-way-split"),
        pytest.param(
            [5, 5, 5, 1], [1, 2, 3, 4], {"helpful": 5, "harmless": 2}, 0.25, id="lowest-share"
        ),
    ],
)
def test_rating_mode_per_dimension(helpful, harmless, majority, agreement):
    labels = [{"helpful": h, "harmless": s} for h, s in zip(helpful, harmless, strict=True)]
    assert aggregate(HELPFULNESS, labels) == (majority, pytest.approx(agreement))


def test_spans_kept_when_most_samples_mark_them():
    ada, paris = span(0, 3, "person", "Ada"), span(15, 20, "location", "Paris")
    ada_as_place = span(0, 3, "location", "Ada")
    labels = [[paris, ada], [ada], [ada_as_place, paris], [ada]]
    majority, agreement = aggregate(NER, labels)
    assert majority == [ada]  # paris: 2 of 4 is not a majority
    assert agreement == 0.5


def test_spans_majority_is_in_text_order():
    ada, paris = span(0, 3, "person", "Ada"), span(15, 20, "location", "Paris")
    assert aggregate(NER, [[paris, ada], [paris, ada]]) == ([ada, paris], 1.0)
    assert aggregate(NER, [[], []]) == ([], 1.0)


# --- leader probability ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top", "second", "probability"),
    [
        pytest.param(2, 0, 0.875, id="Beta(3,1)"),
        pytest.param(3, 1, 0.8125, id="Beta(4,2)"),
        pytest.param(3, 0, 0.9375, id="Beta(4,1)"),
        pytest.param(1, 1, 0.5, id="symmetric-Beta(2,2)"),
        pytest.param(4, 4, 0.5, id="symmetric-Beta(5,5)"),
        pytest.param(0, 0, 0.5, id="uniform"),
        pytest.param(1, 2, 0.3125, id="behind-Beta(2,3)"),
    ],
)
def test_leader_probability_hand_computed(top, second, probability):
    assert leader_probability(top, second) == pytest.approx(probability)


@pytest.mark.parametrize(("top", "second"), [(2, 0), (3, 1), (5, 2), (7, 6)])
def test_leader_probability_is_the_beta_tail_above_one_half(top, second):
    """P(X > 1/2) for X ~ Beta(top+1, second+1), by midpoint integration of the density."""
    a, b, steps = top + 1, second + 1, 20_000
    norm = (a + b - 1) * comb(a + b - 2, a - 1)  # 1 / B(a, b) for whole a, b
    width = 0.5 / steps
    xs = (0.5 + (i + 0.5) * width for i in range(steps))
    tail = sum(norm * x ** (a - 1) * (1 - x) ** (b - 1) for x in xs) * width
    assert leader_probability(top, second) == pytest.approx(tail, abs=1e-6)


# --- when to stop ----------------------------------------------------------------------------

A, B, C = "positive", "negative", "neutral"

STOPPING = [
    # (drawn so far, K, stop_confidence) -> stop?
    pytest.param([], 5, 0.85, False, id="nothing-yet"),
    pytest.param([A, A, A], 5, 1.0, True, id="3-0-of-5-is-decided"),
    pytest.param([A, A, B, A], 5, 1.0, True, id="3-1-of-5-is-decided"),
    pytest.param([A, A, B], 5, 1.0, False, id="2-1-of-5-could-still-flip"),
    pytest.param([A, A], 5, 0.85, True, id="2-0-reaches-0.85"),
    pytest.param([A, A], 5, 1.0, False, id="2-0-not-at-1.0"),
    pytest.param([A, A], 5, 0.9, False, id="2-0-short-of-0.9"),
    pytest.param([A, A, A], 7, 0.9, True, id="3-0-reaches-0.9"),
    pytest.param([A], 5, 0.5, False, id="one-vote-never-enough"),
    pytest.param([A, B], 5, 0.5, False, id="1-1-is-a-coin-flip"),
    pytest.param([A, A, B], 9, 0.85, False, id="2-1-is-only-0.6875"),
    pytest.param([A, B, C], 3, 1.0, True, id="K-reached-undecided"),
    pytest.param([A, B], 2, 0.85, True, id="K-reached-tied"),
    pytest.param([A, A, B, B, A], 4, 1.0, True, id="more-than-K-stored"),
    pytest.param([FAILED, FAILED, FAILED], 3, 0.85, True, id="failures-use-up-K"),
    pytest.param([A, FAILED, FAILED], 5, 1.0, False, id="failures-and-one-vote"),
    pytest.param([A, A, FAILED, FAILED], 5, 1.0, True, id="failures-shrink-what-is-left"),
    pytest.param([A, A, FAILED], 5, 1.0, False, id="2-0-plus-failure-could-flip"),
]


@pytest.mark.parametrize(("drawn", "k", "stop_confidence", "stop"), STOPPING)
def test_should_stop(drawn, k, stop_confidence, stop):
    assert should_stop(samples(*drawn), k, stop_confidence) is stop


def test_failures_count_toward_k():
    """Two agreeing votes out of K=5 can be overturned; with two failures spent they cannot."""
    assert not should_stop(samples(A, A), 5, 1.0)
    assert should_stop(samples(A, FAILED, A, FAILED), 5, 1.0)


@pytest.mark.parametrize(
    ("drawn", "k", "stop_confidence", "batch"),
    [
        pytest.param([], 5, 0.85, 2, id="first-batch-two-when-confidence-can-stop"),
        pytest.param([], 5, 1.0, 3, id="first-batch-a-majority-of-K"),
        pytest.param([], 4, 1.0, 3, id="first-batch-majority-of-even-K"),
        pytest.param([], 8, 1.0, 5, id="first-batch-majority-of-8"),
        pytest.param([], 1, 0.85, 1, id="K-1"),
        pytest.param([], 1, 1.0, 1, id="K-1-at-1.0"),
        pytest.param([A, B], 5, 0.85, 1, id="then-one-at-a-time"),
        pytest.param([A, FAILED, B], 9, 1.0, 1, id="then-one-after-failures"),
    ],
)
def test_next_batch(drawn, k, stop_confidence, batch):
    assert next_batch(samples(*drawn), k, stop_confidence) == batch


def fewest_that_could_stop(k: int, stop_confidence: float) -> int:
    return next(n for n in range(1, k + 1) if should_stop(samples(*[A] * n), k, stop_confidence))


@pytest.mark.parametrize(
    ("k", "stop_confidence"),
    [pytest.param(k, c, id=f"K{k}-c{c}") for k in (1, 2, 3, 5, 8) for c in (0.5, 0.85, 1.0)],
)
def test_first_batch_is_the_fewest_that_could_end_sampling(k, stop_confidence):
    assert next_batch([], k, stop_confidence) == fewest_that_could_stop(k, stop_confidence)


@pytest.mark.parametrize(("k", "stop_confidence"), [(5, 0.9), (5, 0.95), (8, 0.99)])
def test_first_batch_is_the_fewest_at_high_stop_confidence(k, stop_confidence):
    assert next_batch([], k, stop_confidence) == fewest_that_could_stop(k, stop_confidence)


# gpt-4o-mini ($0.15 / $0.60 per million tokens): a 1,100-token prompt, 40-token answers.
LONG_PROMPT = RoundCosts(prompt_usd=1100 * 0.15e-6, sample_usd=40 * 0.6e-6, honours_n=True)
# The same with a 100-token prompt and 300-token answers (a long rationale).
LONG_ANSWERS = RoundCosts(prompt_usd=100 * 0.15e-6, sample_usd=300 * 0.6e-6, honours_n=True)
# A prompt worth two answers.
TWO_ANSWERS = RoundCosts(prompt_usd=2.0, sample_usd=1.0, honours_n=True)


@pytest.mark.parametrize(
    ("drawn", "k", "stop_confidence", "costs", "size"),
    [
        pytest.param([], 5, 0.85, LONG_PROMPT, 5, id="prompt-dominates-one-request-of-K"),
        pytest.param([A, B], 5, 0.85, LONG_PROMPT, 3, id="prompt-dominates-the-rest-at-once"),
        pytest.param([], 5, 0.85, LONG_ANSWERS, 2, id="answers-dominate-adaptive-first"),
        pytest.param([A, B], 5, 0.85, LONG_ANSWERS, 1, id="answers-dominate-then-one"),
        pytest.param([], 5, 0.85, TWO_ANSWERS, 4, id="a-prompt-buys-two-more"),
        pytest.param([A, B], 9, 0.85, TWO_ANSWERS, 3, id="later-one-plus-two"),
        pytest.param([A, B, A, B], 5, 0.85, TWO_ANSWERS, 1, id="capped-at-what-is-left"),
        pytest.param(
            [], 5, 0.85, replace(LONG_PROMPT, honours_n=False), 2, id="no-n-adaptive-first"
        ),
        pytest.param([A, B], 5, 0.85, replace(LONG_PROMPT, honours_n=False), 1, id="no-n-then-one"),
        pytest.param([], 5, 0.85, None, 2, id="costs-unknown-adaptive"),
        pytest.param([], 5, None, LONG_ANSWERS, 5, id="no-early-stop-all-at-once"),
        pytest.param([], 5, 0.85, replace(TWO_ANSWERS, sample_usd=0.0), 5, id="free-answers"),
        pytest.param([], 5, 1.0, TWO_ANSWERS, 5, id="majority-first-then-two-more"),
    ],
)
def test_round_size(drawn, k, stop_confidence, costs, size):
    assert round_size(samples(*drawn), k, stop_confidence, costs) == size


@pytest.mark.parametrize("costs", [LONG_PROMPT, LONG_ANSWERS, TWO_ANSWERS, None])
def test_a_round_asks_at_least_for_the_fewest_that_could_stop(costs):
    for drawn in ([], [A], [A, B], [A, B, C], [A, A, B, FAILED]):
        fewest = min(next_batch(samples(*drawn), 5, 0.85), 5 - len(drawn))
        assert fewest <= round_size(samples(*drawn), 5, 0.85, costs) <= 5 - len(drawn)


# --- verdicts --------------------------------------------------------------------------------


def test_verdict_from_one_model():
    verdict = build_verdict(SENTIMENT, {"m": samples(A, A, B, confidence=0.9)})
    assert verdict.label == A
    assert verdict.agreement == pytest.approx(2 / 3)
    assert verdict.confidence == pytest.approx(0.9)
    assert (verdict.n_samples, verdict.n_failed) == (3, 0)
    assert verdict.votes == {'"positive"': 2, '"negative"': 1}
    assert verdict.per_model == {} and verdict.disagreeing_models == []


def test_verdict_with_failed_samples_votes_over_the_valid_ones():
    drawn = [
        Sample(model="m", label=A, confidence=0.9),
        Sample(model="m", error="timeout"),
        Sample(model="m", label=A, confidence=0.7),
        Sample(model="m", label=A),  # no stated confidence: left out of the mean
    ]
    verdict = build_verdict(SENTIMENT, {"m": drawn})
    assert verdict.label == A
    assert verdict.agreement == 1.0
    assert verdict.confidence == pytest.approx(0.8)
    assert (verdict.n_samples, verdict.n_failed) == (4, 1)
    assert verdict.votes == {'"positive"': 3}


def test_verdict_when_every_sample_failed():
    verdict = build_verdict(SENTIMENT, {"m": samples(FAILED, FAILED)})
    assert verdict == Verdict(n_samples=2, n_failed=2)
    assert verdict.label is None and verdict.agreement is None and verdict.confidence is None


def test_verdict_without_stated_confidence():
    assert build_verdict(SENTIMENT, {"m": samples(A, A)}).confidence is None


def stated(*answers: tuple) -> list[Sample]:
    """Samples from (label, stated confidence) pairs; FAILED makes a failed one."""
    return [
        Sample(model="m", sample_index=i, error="timeout")
        if answer is FAILED
        else Sample(model="m", sample_index=i, label=answer[0], confidence=answer[1])
        for i, answer in enumerate(answers)
    ]


@pytest.mark.parametrize(
    ("guideline", "drawn", "label", "expected"),
    [
        pytest.param(PREFERENCE, stated(("A", 0.9), ("A", 0.7)), "A", 0.8, id="all-chose-it"),
        pytest.param(PREFERENCE, stated(("A", 0.9), ("B", 0.7)), "A", 0.6, id="other-gives-1-c"),
        pytest.param(
            SENTIMENT, stated((A, 0.8), (B, 0.6)), A, (0.8 + 0.2) / 2, id="rest-shared-by-two"
        ),
        pytest.param(SENTIMENT, stated((A, None), (B, None)), A, 0.5, id="no-confidence-is-vote"),
        pytest.param(SENTIMENT, stated((A, 0.9), FAILED), A, 0.9, id="failed-left-out"),
        pytest.param(SENTIMENT, stated(FAILED), A, None, id="no-valid-sample"),
        pytest.param(TOXICITY, stated((["toxic"], 0.9)), ["toxic"], None, id="multilabel-none"),
    ],
)
def test_support_is_the_mean_probability_the_samples_give_the_label(
    guideline, drawn, label, expected
):
    assert support(guideline, label, drawn) == (
        None if expected is None else pytest.approx(expected)
    )


def test_support_does_not_depend_on_the_order_of_the_samples():
    drawn = stated(*[("A", 0.1 * k) for k in range(1, 10)], ("B", 0.33), ("B", 0.07))
    assert support(PREFERENCE, "A", drawn) == support(PREFERENCE, "A", drawn[::-1])


def test_verdict_support_tells_apart_items_that_agreement_ties():
    sure = build_verdict(PREFERENCE, {"m": stated(("A", 0.95), ("A", 0.9), ("B", 0.55))})
    torn = build_verdict(PREFERENCE, {"m": stated(("A", 0.55), ("A", 0.6), ("B", 0.9))})
    assert sure.agreement == torn.agreement == pytest.approx(2 / 3)
    assert sure.support == pytest.approx(0.7667, abs=1e-4)
    assert torn.support == pytest.approx(0.4167, abs=1e-4)


def test_jury_where_one_model_disagrees():
    by_model = {
        "big": samples(A, A, A, model="big", confidence=0.9),
        "small": samples(B, B, model="small", confidence=0.6),
        "other": samples(A, B, A, model="other", confidence=0.8),
    }
    verdict = build_verdict(SENTIMENT, by_model)
    assert verdict.label == A
    assert verdict.agreement == pytest.approx(5 / 8)
    assert verdict.disagreeing_models == ["small"]
    assert verdict.per_model == {
        "big": {"label": A, "agreement": 1.0, "n": 3},
        "small": {"label": B, "agreement": 1.0, "n": 2},
        "other": {"label": A, "agreement": pytest.approx(2 / 3), "n": 3},
    }
    assert verdict.votes == {'"positive"': 5, '"negative"': 3}


def test_jury_member_whose_samples_all_failed_counts_as_disagreeing():
    by_model = {"big": samples(A, A, model="big"), "flaky": samples(FAILED, model="flaky")}
    verdict = build_verdict(SENTIMENT, by_model)
    assert verdict.label == A
    assert verdict.n_failed == 1
    assert verdict.per_model["flaky"] == {"label": None, "agreement": None, "n": 0}
    assert verdict.disagreeing_models == ["flaky"]


def test_jury_verdict_for_multilabel_compares_whole_sets():
    by_model = {
        "a": samples(["toxic", "insult"], ["toxic", "insult"], model="a"),
        "b": samples(["toxic"], model="b"),
    }
    verdict = build_verdict(TOXICITY, by_model)
    assert verdict.label == ["toxic", "insult"]
    assert verdict.disagreeing_models == ["b"]


def test_spans_verdict_from_parsed_answers():
    """Model answers carry text and label only; the offsets found in the item are voted on."""
    item = Item(item_id="s1", fields={"text": "Ada met Ada in Paris."})
    raws = [
        '{"label": [{"text": "Ada", "label": "person"}, {"text": "Paris", "label": "location"}]}',
        '{"label": [{"text": "ada", "label": "Person"}]}',
        '{"label": [{"text": "Ada", "label": "person"}, {"text": "Ada", "label": "person"}]}',
    ]
    drawn = [Sample(model="m", label=parse_answer(NER, item, raw).label) for raw in raws]
    verdict = build_verdict(NER, {"m": drawn})
    assert verdict.label == [span(0, 3, "person", "Ada")]
    assert verdict.agreement == pytest.approx(2 / 3)


# --- routing ---------------------------------------------------------------------------------

DEFAULTS = Thresholds(audit_share=0.0)  # no audit draw unless a test asks for one
KEY = "0f" * 32  # a log's audit key (labelagent.store.keys.audit_key)


def verdict(**changes) -> Verdict:
    good = {"label": A, "agreement": 1.0, "confidence": 0.9, "n_samples": 3, "votes": {}}
    return Verdict(**{**good, **changes})


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        pytest.param({}, [], id="confident-and-agreed"),
        pytest.param({"agreement": 0.6}, ["low_agreement"], id="low-agreement"),
        pytest.param({"agreement": 0.8}, [], id="agreement-at-threshold-is-enough"),
        pytest.param({"confidence": 0.3}, ["low_confidence"], id="low-confidence"),
        pytest.param({"confidence": 0.5}, [], id="confidence-at-threshold-is-enough"),
        pytest.param({"confidence": None}, [], id="no-stated-confidence-is-not-low"),
        pytest.param({"support": 0.4}, [], id="support-is-not-gated-by-default"),
        pytest.param({"disagreeing_models": ["small"]}, ["jury_disagreement"], id="jury"),
        pytest.param({"n_failed": 1}, ["failed_samples"], id="failed-samples"),
        pytest.param(
            {"agreement": 0.5, "confidence": 0.2, "disagreeing_models": ["x"], "n_failed": 2},
            ["low_agreement", "low_confidence", "jury_disagreement", "failed_samples"],
            id="every-reason-in-order",
        ),
        pytest.param(
            {"label": None, "agreement": None, "confidence": None, "n_failed": 3},
            ["model_failed"],
            id="model-failed-alone",
        ),
        pytest.param({"label": []}, [], id="empty-multilabel-set-is-a-label"),
    ],
)
def test_route_reasons(changes, reasons):
    routed, why = route(verdict(**changes), DEFAULTS, "item-1", "hash", KEY)
    assert why == reasons
    assert routed == ("escalated" if reasons else "auto")


@pytest.mark.parametrize(
    ("support", "reasons"),
    [(0.7, ["low_support"]), (0.8, []), (None, [])],
    ids=["below", "at-threshold", "no-support-for-this-task"],
)
def test_a_calibrated_rule_on_support_gates_on_support(support, reasons):
    rule = Thresholds(min_agreement=0.0, min_support=0.8, audit_share=0.0)
    assert route(verdict(support=support), rule, "item-1", "hash", KEY)[1] == reasons


def test_audit_draw_is_fixed_by_item_guideline_key_and_seed():
    assert audit_draw("item-1", "hash", KEY) == audit_draw("item-1", "hash", KEY)
    assert audit_draw("item-1", "hash", KEY) != audit_draw("item-2", "hash", KEY)
    assert audit_draw("item-1", "hash", KEY) != audit_draw("item-1", "other-hash", KEY)
    assert audit_draw("item-1", "hash", KEY) != audit_draw("item-1", "hash", "another key")
    assert audit_draw("item-1", "hash", KEY, seed=1) != audit_draw("item-1", "hash", KEY, seed=0)
    assert 0 <= audit_draw("item-1", "hash", KEY) < 1


def test_audit_escalates_a_share_of_otherwise_auto_items():
    thresholds = Thresholds(audit_share=0.05)
    routes = [route(verdict(), thresholds, f"item-{i}", "hash", KEY) for i in range(10_000)]
    outcomes = {(routed, tuple(reasons)) for routed, reasons in routes}
    assert outcomes == {("auto", ()), ("escalated", ("audit",))}
    audited = sum(routed == "escalated" for routed, _ in routes)
    assert 400 <= audited <= 600  # 5 % of 10,000 is 500, give or take 22


def test_audit_is_the_same_on_a_resumed_run():
    thresholds = Thresholds(audit_share=0.3)
    first = [route(verdict(), thresholds, f"id{i}", "h", KEY, seed=7) for i in range(200)]
    again = [route(verdict(), thresholds, f"id{i}", "h", KEY, seed=7) for i in range(200)]
    assert first == again


@pytest.mark.parametrize(("share", "expected"), [(0.0, "auto"), (1.0, "escalated")])
def test_audit_share_bounds(share, expected):
    assert route(verdict(), Thresholds(audit_share=share), "item-1", "hash", KEY)[0] == expected


def test_audit_is_not_drawn_when_already_escalated():
    routed = route(verdict(n_failed=1), Thresholds(audit_share=1.0), "item-1", "hash", KEY)
    assert routed == ("escalated", ["failed_samples"])


def test_thresholds_merged_with_flags():
    base = Thresholds()
    assert base.merged() is base
    assert base.merged(min_agreement=None, audit_share=None) is base
    flagged = base.merged(min_agreement=0.9, min_confidence=None)
    assert flagged.min_agreement == 0.9
    assert flagged.min_confidence == base.min_confidence
    assert flagged.source == "defaults+flags"
    assert base.min_agreement == 0.8  # the original is untouched


def test_thresholds_merged_keeps_a_calibration_source():
    calibrated = Thresholds(min_agreement=0.7, source="calibration c1")
    merged = calibrated.merged(audit_share=0.0)
    assert (merged.min_agreement, merged.audit_share) == (0.7, 0.0)
    assert merged.source == "calibration c1+flags"


def test_without_early_stopping_every_item_gets_all_samples():
    agreeing = samples("positive", "positive", "positive")
    assert not should_stop(agreeing, 5, None)
    assert should_stop(samples(*["positive"] * 5), 5, None)
    assert next_batch([], 5, None) == 5
    assert next_batch(agreeing, 5, None) == 2
