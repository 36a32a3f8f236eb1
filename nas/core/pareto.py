"""The multi-objective kernel: Pareto dominance, the non-dominated set, non-dominated
sorting and the two-objective hypervolume, over plain numbers.

Every place that draws or ranks a front (stored results, selection, samplers, the
NAS-Bench-201 tables, the report) uses these, so a front means the same everywhere:
duplicates of a front point are all kept, and a NaN objective is an error, never
silently dominated. numpy only: Optuna, Ray and torch never appear here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "dominates",
    "hypervolume_2d",
    "minimised",
    "non_dominated",
    "pareto_front",
    "pareto_ranks",
]

#: Rows compared at once by the general (m > 2) mask: bounds memory at n * _BLOCK * m.
_BLOCK = 512


def minimised(
    points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]
) -> np.ndarray:
    """Points as an (n, m) float array in which every objective is to be minimised."""
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.empty((0, len(directions)))
    if pts.ndim != 2 or pts.shape[1] != len(directions):
        raise ValueError(f"points must be (n, {len(directions)}), got shape {pts.shape}")
    if np.isnan(pts).any():
        raise ValueError("NaN objective value")
    unknown = set(directions) - {"maximize", "minimize"}
    if unknown:
        raise ValueError(f"unknown direction {sorted(unknown)[0]!r}")
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return pts * signs


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """``a`` is no worse than ``b`` everywhere and strictly better somewhere."""
    sa, sb = minimised([a, b], directions)
    return bool((sa <= sb).all() and (sa < sb).any())


def _mask_2d(pts: np.ndarray) -> np.ndarray:
    """O(n log n): a point is non-dominated iff it has the best second objective among
    the points sharing its first, and beats every point whose first is strictly lower."""
    firsts, group = np.unique(pts[:, 0], return_inverse=True)
    best = np.full(len(firsts), np.inf)
    np.minimum.at(best, group, pts[:, 1])
    before = np.concatenate(([np.inf], np.minimum.accumulate(best)[:-1]))
    return (pts[:, 1] == best[group]) & (pts[:, 1] < before[group])


def _mask_any(pts: np.ndarray) -> np.ndarray:
    dominated = np.zeros(len(pts), dtype=bool)
    for start in range(0, len(pts), _BLOCK):
        block = pts[start : start + _BLOCK]
        no_worse = (block[:, None, :] <= pts[None, :, :]).all(axis=2)
        better = (block[:, None, :] < pts[None, :, :]).any(axis=2)
        dominated |= (no_worse & better).any(axis=0)
    return ~dominated


def non_dominated(
    points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]
) -> np.ndarray:
    """Boolean mask of the points no other point dominates (equal points all stay)."""
    pts = minimised(points, directions)
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    if pts.shape[1] == 1:
        return pts[:, 0] == pts[:, 0].min()
    return _mask_2d(pts) if pts.shape[1] == 2 else _mask_any(pts)


def pareto_front(
    points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]
) -> list[int]:
    """Indices of the non-dominated points, in input order."""
    return [int(i) for i in np.flatnonzero(non_dominated(points, directions))]


def pareto_ranks(
    points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]
) -> list[int]:
    """Non-dominated sorting: rank 0 is the front, rank 1 the front of what remains, ..."""
    pts = minimised(points, directions)
    ranks = np.full(len(pts), -1)
    left = np.arange(len(pts))
    rank = 0
    while len(left):
        front = non_dominated(pts[left], ["minimize"] * pts.shape[1])
        ranks[left[front]] = rank
        left = left[~front]
        rank += 1
    return [int(r) for r in ranks]


def hypervolume_2d(
    points: Sequence[Sequence[float]] | np.ndarray,
    reference: Sequence[float],
    directions: Sequence[str],
) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (two objectives).

    Points that do not improve on the reference in both objectives add nothing.
    """
    if len(directions) != 2:
        raise ValueError("hypervolume_2d needs exactly two objectives")
    ref = minimised([reference], directions)[0]
    pts = minimised(points, directions)
    pts = pts[(pts < ref).all(axis=1)] if len(pts) else pts
    if len(pts) == 0:
        return 0.0
    pts = pts[non_dominated(pts, ["minimize", "minimize"])]
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    x, y = pts[order, 0], pts[order, 1]
    # Sorted front: x ascending, y descending; each point owns the strip up to the next x.
    widths = np.diff(np.append(x, ref[0]))
    return float(np.sum(widths * (ref[1] - y)))
