"""Statistics for the leaderboard: bootstrap CIs, paired comparison, percentiles, Cohen's κ.

All resampling is seeded (``bootstrap.seed``) and vectorised. The bootstraps draw
from the exact resampling distribution instead of materialising index arrays:
resampling n questions with replacement gives multinomial counts over the distinct
(outcome, weight) cells, so a bootstrap of accuracy is a binomial, a bootstrap of a
points-weighted score is a multinomial over (points, correct) cells, and a paired
bootstrap of a difference is a multinomial over (a right, b right) cells. Same
distribution, O(samples × cells) instead of O(samples × n).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

CI_LEVEL = 0.95


def _bounds(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [100 * (1 - CI_LEVEL) / 2, 100 * (1 + CI_LEVEL) / 2])
    return round(float(lo), 4), round(float(hi), 4)


def accuracy_ci(correct: int, n: int, samples: int, seed: int) -> tuple[float, float] | None:
    """Return the 95 % bootstrap CI of an accuracy ``correct / n``, or None when ``n == 0``."""
    if n <= 0:
        return None
    rng = np.random.default_rng(seed)
    return _bounds(rng.binomial(n, correct / n, size=samples) / n)


def score_ci(points: Sequence[int], correct: Sequence[bool], samples: int, seed: int) -> tuple[float, float] | None:
    """Return the 95 % bootstrap CI of a points-weighted score (earned / possible), resampling questions."""
    weights = np.asarray(points, dtype=np.int64)
    hits = np.asarray(correct, dtype=bool)
    if weights.size == 0 or weights.sum() == 0:
        return None
    cells, counts = np.unique(np.stack([weights, hits.astype(np.int64)]), axis=1, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(int(weights.size), counts / counts.sum(), size=samples)
    earned = draws @ (cells[0] * cells[1])
    possible = draws @ cells[0]
    return _bounds(earned / np.maximum(possible, 1))


def mean_ci(values: Sequence[float], samples: int, seed: int) -> tuple[float, float] | None:
    """Return the 95 % bootstrap CI of the mean of ``values`` (e.g. 0–10 scores / 10), or None when empty."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None
    cells, counts = np.unique(arr, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(int(arr.size), counts / arr.size, size=samples)
    return _bounds(draws @ cells / arr.size)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Return Cohen's κ of two raters' labels on the same items, or None when undefined.

    κ = (p_o − p_e) / (1 − p_e), p_o the observed and p_e the chance agreement from each
    rater's label shares; undefined without items or when p_e is 1 (both always give one label).
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} labels against {len(b)}")
    n = len(a)
    shares_a, shares_b = Counter(a), Counter(b)
    chance = sum(count * shares_b[label] for label, count in shares_a.items())  # p_e × n²
    if n == 0 or chance == n * n:
        return None
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    return round((n * agree - chance) / (n * n - chance), 4)


def quadratic_kappa(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Return the quadratic-weighted Cohen's κ of two raters' scores (e.g. 0–10), or None when undefined.

    κ_w = 1 − Σ w·observed / Σ w·expected with weights (i − j)², expected from the marginals
    (the weights' scale cancels, so the score range need not be given). Undefined without
    items or when the expected disagreement is 0 (both raters give one and the same score).
    """
    if len(a) != len(b):
        raise ValueError(f"quadratic_kappa: {len(a)} scores against {len(b)}")
    n = len(a)
    observed = n * sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
    expected = n * (sum(x * x for x in a) + sum(y * y for y in b)) - 2 * sum(a) * sum(b)
    if n == 0 or expected <= 0:
        return None
    return round(1 - observed / expected, 4)


def paired_difference(a: Sequence[bool], b: Sequence[bool], samples: int, seed: int) -> dict[str, float | int | None]:
    """Return accuracy(a) − accuracy(b) on the same questions with a paired-bootstrap 95 % CI and McNemar."""
    x = np.asarray(a, dtype=bool)
    y = np.asarray(b, dtype=bool)
    n = int(x.size)
    only_a = int(np.sum(x & ~y))
    only_b = int(np.sum(~x & y))
    result: dict[str, float | int | None] = {
        "n": n,
        "accuracy_a": round(float(x.mean()), 4) if n else None,
        "accuracy_b": round(float(y.mean()), 4) if n else None,
        "difference": round((only_a - only_b) / n, 4) if n else None,
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "mcnemar_p": mcnemar_exact(only_a, only_b),
        "ci_low": None,
        "ci_high": None,
    }
    if n:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(n, [only_a / n, only_b / n, (n - only_a - only_b) / n], size=samples)
        result["ci_low"], result["ci_high"] = _bounds((draws[:, 0] - draws[:, 1]) / n)
    return result


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Return the two-sided exact McNemar p-value (binomial test on the discordant pairs)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return round(min(1.0, 2 * tail), 6)


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 90, 99)) -> dict[str, float] | None:
    """Return ``{"p50": …, "p90": …, "p99": …, "mean": …}`` of ``values``, or None when empty."""
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    out = {f"p{q}": round(float(v), 3) for q, v in zip(qs, np.percentile(arr, qs), strict=True)}
    out["mean"] = round(float(arr.mean()), 3)
    return out


def point_biserial(flags: Sequence[bool], values: Sequence[float]) -> float | None:
    """Return the correlation between a yes/no outcome and a number, or None when undefined."""
    x = np.asarray(flags, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return None
    return round(float(np.corrcoef(x, y)[0, 1]), 4)
