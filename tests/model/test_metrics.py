"""Ranking and generation metrics (model.metrics) against hand-computed values and the
random-ranker anchors of DESIGN.md section 6 (LiveBot section 5 protocol)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from model.metrics import (
    RANK_METRICS,
    bleu,
    corpus_bleu,
    distinct_n,
    expected_random,
    first_truth_rank_distribution,
    mean_rank,
    mean_reciprocal_rank,
    non_empty_rate,
    rank_of_first_truth,
    ranks_of_first_truth,
    recall_at,
    summarize,
)

ANCHORS_5 = {"R@1": "5.00", "R@5": "23.04", "R@10": "41.62", "MR": "16.83", "MRR": "0.1617"}
ANCHORS_1 = {"R@1": "1.00", "R@5": "5.00", "R@10": "10.00", "MR": "50.50", "MRR": "0.0519"}


def _printed(values: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.4f}" if k == "MRR" else f"{v:.2f}" for k, v in values.items()}


# ---------------------------------------------------------------------------- rank of truth


def test_lower_loss_ranks_first():
    assert rank_of_first_truth([0.5, 0.2, 0.9, 0.1], [False, True, False, False]) == 2
    assert rank_of_first_truth([3.0, 1.0, 2.0], [False, True, False]) == 1
    assert rank_of_first_truth([3.0, 1.0, 2.0], [True, False, False]) == 3


def test_first_of_several_truths_counts():
    # truths at 0.7 and 0.3; only the 0.1 distractor beats the better one
    assert rank_of_first_truth([0.7, 0.1, 0.3, 0.5], [True, False, True, False]) == 2


def test_ties_are_pessimistic():
    # the truth ties with two distractors: both rank before it
    assert rank_of_first_truth([1.0, 1.0, 1.0, 2.0], [True, False, False, False]) == 3
    # two tied truths tied with a distractor: the first truth still comes after it
    assert rank_of_first_truth([1.0, 1.0, 1.0, 0.5], [True, True, False, False]) == 3
    # constant scores: the worst rank, N - m + 1
    assert rank_of_first_truth([0.0] * 100, [True] * 5 + [False] * 95) == 96
    # infinite losses tie too
    assert rank_of_first_truth([math.inf, math.inf, 1.0], [True, False, False]) == 3


def test_batched_ranks_match_a_sort_with_truths_last_on_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(200, 12)).astype(float)  # many ties
    truth = rng.random((200, 12)) < 0.3
    truth[:, 0] |= ~truth.any(axis=1)
    for row, t, got in zip(scores, truth, ranks_of_first_truth(scores, truth), strict=True):
        order = sorted(range(len(row)), key=lambda i: (row[i], bool(t[i])))
        assert got == 1 + next(pos for pos, i in enumerate(order) if t[i])


@pytest.mark.parametrize(
    ("scores", "truth", "message"),
    [
        ([1.0, float("nan")], [True, False], "NaN"),
        ([1.0, 2.0], [False, False], "ground-truth"),
        ([1.0, 2.0], [True], "shape"),
    ],
)
def test_bad_rank_input_raises(scores, truth, message):
    with pytest.raises(ValueError, match=message):
        rank_of_first_truth(scores, truth)


# ------------------------------------------------------------------------- rank metrics


def test_rank_metrics_by_hand():
    ranks = [1, 2, 6, 11]
    assert recall_at(ranks, 1) == 25.0
    assert recall_at(ranks, 5) == 50.0
    assert recall_at(ranks, 10) == 75.0
    assert recall_at(ranks, 11) == 100.0
    assert mean_rank(ranks) == 5.0
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 11) / 4)


@pytest.mark.parametrize("ranks", [[], [0, 1], [[1, 2]]])
def test_bad_ranks_raise(ranks):
    with pytest.raises(ValueError):
        mean_rank(ranks)


def test_summarize_points_and_intervals():
    ranks = [1, 2, 6, 11]
    summary = summarize(ranks, n_boot=200, seed=3)
    assert list(summary) == list(RANK_METRICS)
    assert summary["R@1"].value == 25.0
    assert summary["MR"].value == 5.0
    assert summary["MRR"].value == pytest.approx(mean_reciprocal_rank(ranks))
    for est in summary.values():
        assert est.low <= est.value <= est.high
    assert summarize(ranks, n_boot=200, seed=3) == summary  # seeded


def test_bootstrap_intervals_shrink_with_more_samples():
    rng = np.random.default_rng(0)
    few = summarize(rng.integers(1, 101, size=50), seed=1)
    many = summarize(rng.integers(1, 101, size=5000), seed=1)
    for name in RANK_METRICS:
        assert many[name].low <= many[name].value <= many[name].high
        assert many[name].high - many[name].low < (few[name].high - few[name].low) / 3


def test_summarize_of_identical_ranks_has_no_spread():
    summary = summarize([3] * 10, n_boot=50)
    assert summary["MR"].to_dict() == {"value": 3.0, "low": 3.0, "high": 3.0}


# -------------------------------------------------------------------- random-ranker anchors


def test_expected_random_gives_the_design_anchors():
    assert _printed(expected_random(100, 5)) == ANCHORS_5
    assert _printed(expected_random(100, 1)) == ANCHORS_1


def test_rank_distribution_matches_enumeration():
    n, m = 6, 2
    dist = first_truth_rank_distribution(n, m)
    assert sum(dist) == 1
    counts = [0] * n
    for truths in itertools.combinations(range(n), m):
        counts[min(truths)] += 1
    assert dist == [Fraction(c, math.comb(n, m)) for c in counts]
    assert expected_random(n, m)["MR"] == pytest.approx((n + 1) / (m + 1))


@pytest.mark.parametrize(("n_truths", "anchors"), [(5, ANCHORS_5), (1, ANCHORS_1)])
def test_shuffling_scorer_lands_on_the_anchors(n_truths, anchors):
    """A scorer that gives random losses, over 20,000 samples of 100 candidates."""
    rng = np.random.default_rng(2024)
    scores = rng.random((20_000, 100))
    truth = np.zeros_like(scores, dtype=bool)
    truth[:, :n_truths] = True
    truth = rng.permuted(truth, axis=1)  # ground truths anywhere among the candidates
    summary = summarize(ranks_of_first_truth(scores, truth), n_boot=200)
    # about 4 standard errors of each mean at 20,000 samples
    tolerance = {"R@1": 0.6, "R@5": 1.2, "R@10": 1.4, "MR": 0.4 if n_truths == 5 else 0.8}
    tolerance["MRR"] = 0.008
    for name in RANK_METRICS:
        assert summary[name].value == pytest.approx(float(anchors[name]), abs=tolerance[name])
        half_width = (summary[name].high - summary[name].low) / 2  # about 2 standard errors
        assert abs(summary[name].value - float(anchors[name])) < 2.5 * half_width


# ---------------------------------------------------------------------------- generation


def test_non_empty_rate():
    assert non_empty_rate(["哈哈", " ", "", ["x"], [" "], []]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        non_empty_rate([])


def test_distinct_n_by_hand():
    texts = [["a", "b", "a"], ["a", "b"]]
    assert distinct_n(texts, 1) == pytest.approx(2 / 5)  # a b a a b
    assert distinct_n(texts, 2) == pytest.approx(2 / 3)  # ab ba ab
    assert distinct_n(texts, 3) == 1.0  # aba
    assert distinct_n(texts, 4) == 0.0
    assert distinct_n([], 1) == 0.0


def test_sentence_bleu_by_hand():
    hyp = ["the", "cat", "sat", "on", "the", "mat"]
    ref = ["the", "cat", "is", "on", "the", "mat"]
    # p1 = 5/6, p2 = (3+1)/(5+1), p3 = (1+1)/(4+1), p4 = (0+1)/(3+1), equal lengths: BP = 1
    assert bleu(hyp, [ref]) == pytest.approx((5 / 6 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)
    assert bleu(ref, [ref]) == 1.0
    assert bleu([], [ref]) == 0.0
    assert bleu(["dog"], [ref]) == 0.0
    assert bleu(hyp, [ref], smooth=False) == 0.0  # no 4-gram match


def test_bleu_clipping_brevity_and_closest_reference():
    # "the" clipped to 2 by the second reference; closest reference length 3 < 4: BP = 1
    hyp = ["the", "the", "the", "the"]
    refs = [["the", "cat"], ["the", "the", "dog"]]
    assert bleu(hyp, refs) == pytest.approx((1 / 2 * 2 / 4 * 1 / 3 * 1 / 2) ** 0.25)
    # short hypothesis: every precision is 1, BP = exp(1 - 6/2)
    assert bleu(["the", "cat"], [["the", "cat", "sat", "on", "the", "mat"]]) == pytest.approx(
        math.exp(-2)
    )
    # lengths 3 and 5 are equally close to 4: the shorter one counts, so no penalty
    assert bleu(["a", "b", "c", "d"], [["a", "b", "c"], ["a", "b", "c", "d", "e"]]) == 1.0
    assert bleu(["a", "b"], [["a", "b"]], max_n=2) == 1.0


def test_corpus_bleu_sums_counts_before_dividing():
    hyps = [["a", "b", "c", "d"], ["a", "b"]]
    refs = [[["a", "b", "c", "d"]], [["a", "c"]]]
    # matches (4+1, 3+0, 2, 1) over totals (4+2, 3+1, 2, 1); lengths 6 = 6
    assert corpus_bleu(hyps, refs) == pytest.approx((5 / 6 * 3 / 4) ** 0.25)
    one = ["the", "cat", "sat", "on", "the", "mat"]
    ref = ["the", "cat", "is", "on", "the", "mat"]
    assert corpus_bleu([one], [[ref]], smooth=True) == pytest.approx(bleu(one, [ref]))
    with pytest.raises(ValueError):
        corpus_bleu(hyps, refs[:1])
