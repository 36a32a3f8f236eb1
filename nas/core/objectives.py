"""Objectives of a search: what is measured, which way is better, and how candidates
compare (Pareto dominance, fronts, hypervolume, MnasNet's weighted reward).

Pure functions over plain numbers: Optuna and Ray never appear here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nas.core.errors import NasError

__all__ = [
    "ACCURACY_LATENCY",
    "METRICS",
    "Objective",
    "dominates",
    "hypervolume_2d",
    "mnasnet_reward",
    "pareto_front",
    "pareto_ranks",
]

#: Metric name -> direction. Accuracy is maximised, costs are minimised.
METRICS: dict[str, str] = {
    "accuracy": "maximize",
    "latency": "minimize",
    "params": "minimize",
    "macs": "minimize",
}
#: The directions of (accuracy, latency): the two-objective trade-off fronts are drawn in.
ACCURACY_LATENCY = (METRICS["accuracy"], METRICS["latency"])


@dataclass(frozen=True)
class Objective:
    """One optimised metric."""

    metric: str

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise NasError(
                f"unknown metric {self.metric!r} (known: {', '.join(METRICS)})", field="metrics"
            )

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def _signed(values: Sequence[float], directions: Sequence[str]) -> tuple[float, ...]:
    """Turn every objective into one to minimise."""
    return tuple(-v if d == "maximize" else v for v, d in zip(values, directions, strict=True))


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """``a`` is no worse than ``b`` everywhere and strictly better somewhere."""
    sa, sb = _signed(a, directions), _signed(b, directions)
    return all(x <= y for x, y in zip(sa, sb, strict=True)) and any(
        x < y for x, y in zip(sa, sb, strict=True)
    )


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points (duplicates of a front point are all kept),
    in input order. O(n^2): fronts of a search are hundreds of points, not millions."""
    pts = [tuple(p) for p in points]
    for p in pts:
        if any(math.isnan(v) for v in p):
            raise ValueError("pareto_front: NaN objective value")
    return [
        i
        for i, p in enumerate(pts)
        if not any(dominates(q, p, directions) for j, q in enumerate(pts) if j != i)
    ]


def pareto_ranks(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Non-dominated sorting: rank 0 is the front, rank 1 the front of what remains, ..."""
    ranks = [-1] * len(points)
    left = list(range(len(points)))
    rank = 0
    while left:
        for k in pareto_front([points[i] for i in left], directions):
            ranks[left[k]] = rank
        left = [i for i in left if ranks[i] < 0]
        rank += 1
    return ranks


def hypervolume_2d(
    points: Sequence[Sequence[float]], reference: Sequence[float], directions: Sequence[str]
) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (two objectives).

    Points that do not improve on the reference in both objectives add nothing.
    """
    ref = _signed(reference, directions)
    pts = sorted(
        {
            _signed(p, directions)
            for p in points
            if all(a < b for a, b in zip(_signed(p, directions), ref, strict=True))
        }
    )
    area, best_y = 0.0, ref[1]
    for x, y in pts:  # sweep along the first objective, ascending
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def mnasnet_reward(accuracy: float, latency_ms: float, target_ms: float, w: float = -0.07) -> float:
    """MnasNet's soft-constrained reward ``acc * (lat / T) ** w`` (w = -0.07 by default)."""
    if latency_ms <= 0 or target_ms <= 0:
        raise ValueError("latencies must be positive")
    return accuracy * (latency_ms / target_ms) ** w
