"""Rank agreement between two scorings of the same items (Kendall's tau-b, Spearman's
rho) and bootstrap intervals for them: how well a cheap signal (a latency prediction,
a zero-cost proxy) orders networks the way the expensive one does.

numpy only; ties are handled (tau-b, average ranks), as real measurements have them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap", "kendall_tau", "ranks", "spearman"]


def _pair(x: Sequence[float], y: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"{what} needs two equally long sequences of 2+ values")
    return a, b


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled), O(n^2): fine for thousands of points."""
    a, b = _pair(x, y, "kendall_tau")
    iu = np.triu_indices(len(a), k=1)
    sa = np.sign(a[:, None] - a[None, :])[iu]
    sb = np.sign(b[:, None] - b[None, :])[iu]
    n0 = len(sa)
    denom = np.sqrt((n0 - float(np.sum(sa == 0))) * (n0 - float(np.sum(sb == 0))))
    return float(np.sum(sa * sb)) / denom if denom > 0 else 0.0


def ranks(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, tied values sharing the average of their ranks."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(1, len(a) + 1)
    values, inverse = np.unique(a, return_inverse=True)
    sums = np.zeros(len(values))
    np.add.at(sums, inverse, r)
    return (sums / np.bincount(inverse))[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (0 when one is constant)."""
    a, b = _pair(x, y, "spearman")
    ra, rb = ranks(a) - (len(a) + 1) / 2, ranks(b) - (len(b) + 1) / 2
    denom = np.sqrt(np.sum(ra * ra) * np.sum(rb * rb))
    return float(np.sum(ra * rb) / denom) if denom > 0 else 0.0


@dataclass(frozen=True)
class Interval:
    """A statistic on the whole sample and its percentile bootstrap interval."""

    value: float
    low: float
    high: float
    level: float


def bootstrap(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    x: Sequence[float],
    y: Sequence[float],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``statistic(x, y)`` with a percentile interval from resampling the pairs (seeded)."""
    a, b = _pair(x, y, "bootstrap")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(resamples, len(a)))
    values = np.array([statistic(a[d], b[d]) for d in draws])
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(statistic(a, b), float(low), float(high), level)
