"""Agreement metrics, by example: each one against a value computed by hand or published."""

import numpy as np
import pytest
from scipy.stats import binom

from labelagent.evals.metrics import (
    Estimate,
    accuracy,
    binomial_upper,
    bootstrap,
    bootstrap_reliability,
    clopper_pearson,
    cohen_kappa,
    confusion,
    expected_calibration_error,
    gwet_ac1,
    gwet_ac1_multi,
    hypergeometric_upper,
    krippendorff_alpha,
    mean_abs_diff,
    per_label,
    ppi_mean,
    ppi_prevalence,
    reliability_bins,
    span_f1,
    weighted_kappa,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12
# units, values 1-5, None = not coded. The same matrix is in the krippendorff package's doctest
# and is irrCAC's `cac.raw4raters`.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def two_by_two(both_yes: int, yes_no: int, no_yes: int, both_no: int) -> tuple[list, list]:
    """Two annotators' labels from the cells of a 2x2 agreement table."""
    a = ["yes"] * (both_yes + yes_no) + ["no"] * (no_yes + both_no)
    b = ["yes"] * both_yes + ["no"] * yes_no + ["yes"] * no_yes + ["no"] * both_no
    return a, b


def test_accuracy_uses_only_items_both_labeled():
    assert accuracy(["x", "y", None, "x"], ["x", "x", "y", None]) == 0.5
    assert accuracy([None], ["x"]) is None


def test_cohen_kappa_textbook_two_by_two():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # po = 35/50 = 0.7; a says yes 25/50, b 30/50: pe = 0.5*0.6 + 0.5*0.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a, b = two_by_two(20, 5, 10, 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_weighted_kappa_small_ordinal_case():
    # pairs (1,1) (1,2) (2,2) (2,3) (3,3) (3,3); a's counts of 1,2,3 are 2,2,2 and b's 1,2,3.
    # Observed sum of squared distances: 1 + 1 = 2.
    # Expected: sum_ij a_i b_j (i-j)^2 / N = 2 * (14 + 4 + 6) / 6 = 8, so kappa_w = 1 - 2/8.
    # Unweighted: po = 4/6, pe = (2*1 + 2*2 + 2*3)/36 = 1/3, kappa = (2/3 - 1/3)/(2/3) = 0.5.
    a, b = [1, 1, 2, 2, 3, 3], [1, 2, 2, 3, 3, 3]
    assert weighted_kappa(a, b, labels=[3, 1, 2]) == pytest.approx(0.75)
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(0.75)
    assert cohen_kappa(a, b) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["x", "x", "x"], ["x", "x", "x"]),  # both constant: pe = 1, kappa is 0/0
        ([None, None], ["x", "y"]),  # no item labeled by both
    ],
)
def test_kappa_is_none_when_undefined(a, b):
    assert cohen_kappa(a, b) is None


def test_gwet_ac1_stays_high_where_kappa_collapses():
    # 100 items: a/a 90, a/b 5, b/a 5, b/b 0; po = 0.90.
    # kappa: each annotator says "a" 95 times, pe = 0.95^2 + 0.05^2 = 0.905,
    #        kappa = (0.90 - 0.905) / (1 - 0.905) = -0.0526.
    # AC1: pi_a = 190/200 = 0.95, pi_b = 0.05; q = 2 categories,
    #      pe = (0.95*0.05 + 0.05*0.95) / (q - 1) = 0.095, AC1 = (0.9 - 0.095) / 0.905 = 0.8895.
    a = ["a"] * 90 + ["a"] * 5 + ["b"] * 5
    b = ["a"] * 90 + ["b"] * 5 + ["a"] * 5
    assert cohen_kappa(a, b) == pytest.approx(-0.005 / 0.095)
    assert gwet_ac1(a, b) == pytest.approx(0.805 / 0.905)
    assert round(gwet_ac1(a, b), 4) == 0.8895
    # A third category nobody used still counts in q: pe = 0.095 / 2 = 0.0475.
    assert gwet_ac1(a, b, labels=["a", "b", "c"]) == pytest.approx(0.8525 / 0.9525)


def test_gwet_ac1_multi_with_missing_values():
    # irrCAC (Gwet's own package) reports AC1 = 0.77544, pa = 0.81818 (9/11 of the 11 units
    # with two or more values), pe = 0.190 for this matrix.
    assert round(gwet_ac1_multi(KRIPPENDORFF_2011), 5) == 0.77544


def test_gwet_ac1_two_raters_is_the_multi_rater_formula():
    a, b = two_by_two(20, 5, 10, 15)
    assert gwet_ac1(a, b) == pytest.approx(gwet_ac1_multi([a, b]))
    assert gwet_ac1(["x", "x"], ["x", "x"]) is None  # one category: q - 1 = 0


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)],
)
def test_krippendorff_alpha_published_example(level, published):
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level=level), 3) == published


def test_krippendorff_alpha_nominal_labels_may_be_strings():
    as_strings = [[None if v is None else f"v{v}" for v in row] for row in KRIPPENDORFF_2011]
    assert round(krippendorff_alpha(as_strings), 3) == 0.743


@pytest.mark.parametrize(
    "reliability",
    [
        [["x", "x", "x"], ["x", "x", "x"]],  # one value only
        [["x", None], [None, "y"]],  # no item has two values
        [["x", "y", "z"]],  # a single annotator
        [],
    ],
)
def test_krippendorff_alpha_is_none_without_pairable_variation(reliability):
    assert krippendorff_alpha(reliability) is None


# scikit-learn's documented confusion_matrix example.
Y_TRUE = ["cat", "ant", "cat", "cat", "ant", "bird"]
Y_PRED = ["ant", "ant", "cat", "cat", "ant", "cat"]
ANIMALS = ["ant", "bird", "cat"]


def test_confusion_rows_are_reference_columns_predicted():
    assert confusion(Y_TRUE, Y_PRED, ANIMALS) == [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
    assert confusion([None], ["ant"], ANIMALS) == [[0, 0, 0]] * 3


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        # "ant" predicted 3 times, 2 right; both true ants found: f1 = 2 * (2/3 * 1) / (5/3)
        ("ant", {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}),
        # "bird" never predicted: precision 0 by convention, recall 0/1
        ("bird", {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}),
        ("cat", {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3}),
    ],
)
def test_per_label_hand_counts(label, expected):
    assert per_label(Y_TRUE, Y_PRED, ANIMALS)[label] == pytest.approx(expected)


def test_mean_abs_diff_skips_missing():
    assert mean_abs_diff([1, 2, 3, None], [1, 3, 5, 4]) == 1.0  # (0 + 1 + 2) / 3


TRUE_SPANS = [[(0, 5, "PER"), (10, 15, "LOC")], [(3, 8, "ORG")]]
PRED_SPANS = [[(0, 5, "PER"), (11, 15, "LOC")], [(3, 8, "PER")]]


@pytest.mark.parametrize(
    ("mode", "matched"),
    [("exact", 1), ("overlap", 2)],  # (11, 15) overlaps (10, 15); ORG vs PER never matches
)
def test_span_f1_exact_and_overlap(mode, matched):
    scores = span_f1(TRUE_SPANS, PRED_SPANS, mode=mode)
    assert scores == pytest.approx(
        {
            "precision": matched / 3,
            "recall": matched / 3,
            "f1": matched / 3,
            "n_true": 3,
            "n_pred": 3,
        }
    )


def test_span_f1_overlap_matches_each_true_span_once():
    # Two predictions inside one true span: one match. (5, 9) touches (0, 5) only at the end.
    scores = span_f1([[(0, 10, "X")]], [[(0, 4, "X"), (5, 9, "X")]], mode="overlap")
    assert (scores["precision"], scores["recall"]) == (0.5, 1.0)
    assert span_f1([[(0, 5, "X")]], [[(5, 9, "X")]], mode="overlap")["f1"] == 0.0


def test_clopper_pearson_known_values():
    # k = 0: the upper bound solves (1 - p)^10 = 0.025.
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)))
    assert round(clopper_pearson(0, 10)[1], 4) == 0.3085
    assert clopper_pearson(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0))
    assert clopper_pearson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("n", "confidence"), [(10, 0.95), (100, 0.9), (3, 0.99)])
def test_binomial_upper_with_no_failures_seen(n, confidence):
    assert binomial_upper(0, n, confidence) == pytest.approx(1 - (1 - confidence) ** (1 / n))


@pytest.mark.parametrize(("k", "n"), [(1, 20), (7, 50), (30, 31)])
def test_binomial_upper_is_the_rate_with_that_tail(k, n):
    upper = binomial_upper(k, n, 0.95)
    assert binom.cdf(k, n, upper) == pytest.approx(0.05)


@pytest.mark.parametrize(("k", "n"), [(5, 5), (0, 0)])
def test_binomial_upper_is_one_without_information(k, n):
    assert binomial_upper(k, n, 0.95) == 1.0


def agreeing(n: int) -> tuple[list, list]:
    """Two annotators agreeing on 80% of n items."""
    a = ["x", "y", "x", "y", "x"] * (n // 5)
    b = ["x", "y", "x", "y", "y"] * (n // 5)
    return a, b


def test_bootstrap_interval_brackets_the_figure_and_narrows_with_more_items():
    small = bootstrap(accuracy, *agreeing(50), n_resamples=300)
    large = bootstrap(accuracy, *agreeing(500), n_resamples=300)
    assert small.value == large.value == 0.8
    assert small.low < 0.8 < small.high
    assert large.high - large.low < small.high - small.low
    assert (small.n, large.n) == (50, 500)


def test_bootstrap_is_deterministic_for_a_seed():
    a, b = agreeing(100)
    assert bootstrap(cohen_kappa, a, b, n_resamples=200, seed=7) == bootstrap(
        cohen_kappa, a, b, n_resamples=200, seed=7
    )
    assert bootstrap(cohen_kappa, a, b, n_resamples=200, seed=8) != bootstrap(
        cohen_kappa, a, b, n_resamples=200, seed=7
    )


def test_bootstrap_drops_resamples_where_the_statistic_is_undefined():
    # One "y" in 20 items: most resamples leave both annotators constant, where kappa is None.
    a, b = ["x"] * 19 + ["y"], ["x"] * 20
    estimate = bootstrap(cohen_kappa, a, b, n_resamples=200)
    assert estimate == Estimate(value=0.0, low=0.0, high=0.0, n=20)
    assert bootstrap(cohen_kappa, ["x"] * 5, ["x"] * 5) == Estimate(None, None, None, 5)


def test_bootstrap_of_a_statistic_with_arguments():
    estimate = bootstrap(
        lambda t, p: span_f1(t, p, mode="overlap")["f1"], TRUE_SPANS, PRED_SPANS, n_resamples=100
    )
    assert estimate.value == pytest.approx(2 / 3)


def test_bootstrap_reliability_resamples_items_of_the_matrix():
    estimate = bootstrap_reliability(krippendorff_alpha, KRIPPENDORFF_2011, n_resamples=300)
    assert round(estimate.value, 3) == 0.743
    assert estimate.low < estimate.value < estimate.high <= 1.0
    assert estimate.n == 12


def test_estimate_as_dict_is_json_friendly():
    estimate = Estimate(value=0.123456, low=None, high=0.9, n=3)
    assert estimate.as_dict() == {"value": 0.1235, "low": None, "high": 0.9, "n": 3}


def test_reliability_bins_and_perfect_calibration():
    # 10 answers at 0.2 with 2 right, 10 at 0.7 with 7 right, 5 at 1.0 all right.
    probs = [0.2] * 10 + [0.7] * 10 + [1.0] * 5
    correct = [True] * 2 + [False] * 8 + [True] * 7 + [False] * 3 + [True] * 5
    bins = reliability_bins(probs, correct)
    assert [(b["low"], b["high"], b["count"]) for b in bins] == [
        (0.2, 0.3, 10),
        (0.7, 0.8, 10),
        (0.9, 1.0, 5),  # 1.0 falls in the last bin
    ]
    assert [b["accuracy"] for b in bins] == pytest.approx([0.2, 0.7, 1.0])
    assert expected_calibration_error(probs, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_annotator():
    assert expected_calibration_error([0.9] * 10, [True, False] * 5) == pytest.approx(0.4)
    assert expected_calibration_error([], []) is None


def test_ppi_equals_the_model_mean_when_the_model_is_right_on_labeled_items():
    unlabeled = [1, 0, 0, 1, 1, 0, 0, 0]
    labeled = [1, 0, 1, 0]
    estimate = ppi_mean(unlabeled, labeled, labeled)
    assert estimate.value == pytest.approx(np.mean(unlabeled))
    assert estimate.n == 12


def test_ppi_removes_a_constant_bias():
    # True prevalence 0.3; the model also calls 20% of all items positive that are not.
    truth_labeled = [1] * 30 + [0] * 70
    pred_labeled = [1] * 30 + [1] * 20 + [0] * 50  # mean 0.5, truth - pred averages -0.2
    pred_unlabeled = [1] * 300 + [1] * 200 + [0] * 500  # mean 0.5
    estimate = ppi_mean(pred_unlabeled, pred_labeled, truth_labeled)
    assert estimate.value == pytest.approx(0.3)
    assert estimate.low < 0.3 < estimate.high < 0.5  # the model's own 0.5 is excluded


def test_ppi_interval_covers_the_true_prevalence_at_its_confidence():
    rng = np.random.default_rng(0)
    draws, covered = 200, 0
    for _ in range(draws):
        truth = rng.random(1100) < 0.3
        # a biased model: misses 10% of positives, flags 15% of negatives
        pred = np.where(truth, rng.random(1100) > 0.1, rng.random(1100) < 0.15).astype(float)
        estimate = ppi_mean(pred[100:], pred[:100], truth[:100].astype(float), confidence=0.9)
        covered += estimate.low <= 0.3 <= estimate.high
    assert covered / draws >= 0.85


def test_ppi_prevalence_per_label():
    labels = ["pos", "neg", "neu"]
    llm_unlabeled = ["pos"] * 50 + ["neg"] * 30 + ["neu"] * 20
    llm_labeled = ["pos", "neg", "neu", "pos", "pos", "neg"]
    human_labeled = ["pos", "neg", "neu", "neu", "pos", None]  # the model over-calls "pos"
    estimates = ppi_prevalence(llm_unlabeled, llm_labeled, human_labeled, labels)
    assert estimates["pos"].value == pytest.approx(0.5 - 1 / 5)
    assert estimates["neu"].value == pytest.approx(0.2 + 1 / 5)
    assert sum(e.value for e in estimates.values()) == pytest.approx(1.0)
    assert estimates["neg"].n == 105


def test_a_prevalence_interval_stays_within_0_and_1():
    estimate = ppi_prevalence(["a"] * 50, ["b", "b", "a"], ["a", "b", "a"], ["a", "b"])["b"]
    assert 0.0 <= estimate.low <= estimate.high <= 1.0


def test_hypergeometric_upper_bounds_the_errors_left_among_the_unreviewed():
    # 0 wrong of 10 reviewed out of 20: with 4 wrong in all, P(none reviewed) =
    # C(16,10)/C(20,10) = 8008/184756 = 0.0433 <= 0.05; with 3 it is C(17,10)/C(20,10) = 0.105:
    # the bound is 3/10.
    assert hypergeometric_upper(0, 10, 10, 0.95) == 0.3
    assert hypergeometric_upper(2, 10, 0, 0.95) == 0.0
    assert hypergeometric_upper(10, 10, 5, 0.95) == 1.0


def test_two_rater_ac1_equals_the_multi_rater_formula_on_two_rows():
    rng = np.random.default_rng(5)
    a = rng.choice(["x", "y", "z"], size=200, p=[0.7, 0.2, 0.1]).tolist()
    b = [v if rng.random() < 0.8 else "y" for v in a]
    assert gwet_ac1(a, b) == pytest.approx(gwet_ac1_multi([a, b]))
