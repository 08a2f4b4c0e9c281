"""Statistics: seeded bootstrap CIs equal to plain resampling, paired comparison, exact McNemar."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jmle_eval.score import stats


def test_accuracy_ci_is_seeded_and_brackets_the_estimate():
    first = stats.accuracy_ci(300, 400, samples=2000, seed=0)
    assert first == stats.accuracy_ci(300, 400, samples=2000, seed=0)
    assert first[0] < 0.75 < first[1]
    assert stats.accuracy_ci(0, 0, 2000, 0) is None
    wide, narrow = stats.accuracy_ci(30, 40, 2000, 0), stats.accuracy_ci(1500, 2000, 2000, 0)
    assert (wide[1] - wide[0]) > 3 * (narrow[1] - narrow[0])


def test_binomial_bootstrap_matches_resampling_the_questions():
    rng = np.random.default_rng(1)
    outcomes = rng.random(400) < 0.8
    resampled = outcomes[rng.integers(0, outcomes.size, size=(4000, outcomes.size))].mean(axis=1)
    lo, hi = np.percentile(resampled, [2.5, 97.5])
    got = stats.accuracy_ci(int(outcomes.sum()), outcomes.size, samples=4000, seed=2)
    assert got[0] == pytest.approx(lo, abs=0.006) and got[1] == pytest.approx(hi, abs=0.006)


def test_score_ci_weights_questions_by_points():
    points = [1] * 300 + [3] * 100
    correct = [True] * 300 + [False] * 100  # every 1-point question right, every 3-point one wrong
    lo, hi = stats.score_ci(points, correct, samples=2000, seed=0)
    assert lo < 300 / 600 < hi
    rng = np.random.default_rng(3)
    w, c = np.array(points), np.array(correct)
    idx = rng.integers(0, w.size, size=(4000, w.size))
    ratio = (w[idx] * c[idx]).sum(axis=1) / w[idx].sum(axis=1)
    assert lo == pytest.approx(np.percentile(ratio, 2.5), abs=0.008)
    assert stats.score_ci([], [], 100, 0) is None


@pytest.mark.parametrize(
    ("only_a", "only_b", "p"),
    [(0, 0, 1.0), (5, 0, 0.0625), (0, 5, 0.0625), (10, 10, 1.0), (12, 3, 0.035156), (20, 5, 0.004077)],
)
def test_mcnemar_exact_matches_the_binomial_test(only_a, only_b, p):
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(p, abs=1e-6)


def test_paired_difference_counts_discordant_questions():
    a = [True] * 80 + [False] * 20
    b = [True] * 60 + [False] * 20 + [True] * 5 + [False] * 15
    result = stats.paired_difference(a, b, samples=2000, seed=0)
    assert result["n"] == 100 and result["only_a_correct"] == 20 and result["only_b_correct"] == 5
    assert result["difference"] == pytest.approx(0.80 - 0.65)
    assert result["ci_low"] < 0.15 < result["ci_high"] and result["ci_low"] > 0
    expected = 2 * sum(math.comb(25, k) for k in range(6)) / 2**25
    assert result["mcnemar_p"] == pytest.approx(expected, abs=1e-6)


def test_identical_runs_have_zero_difference():
    result = stats.paired_difference([True, False] * 50, [True, False] * 50, samples=500, seed=0)
    assert result["difference"] == 0 and result["ci_low"] == 0 and result["ci_high"] == 0
    assert result["mcnemar_p"] == 1.0


def test_percentiles_and_point_biserial():
    assert stats.percentiles([]) is None
    got = stats.percentiles(list(range(1, 101)))
    assert got["p50"] == pytest.approx(50.5) and got["p99"] == pytest.approx(99.01) and got["mean"] == 50.5
    assert stats.point_biserial([True, False], [1.0, 2.0]) is None
    assert stats.point_biserial([True, True, False, False], [90.0, 80.0, 30.0, 20.0]) > 0.9
