"""The multi-objective kernel against independent computations: brute-force dominance,
a grid for the hypervolume, and peeling fronts by hand for the ranks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.core.pareto import dominates, hypervolume_2d, non_dominated, pareto_front, pareto_ranks

UP_DOWN = ["maximize", "minimize"]


def test_hand_example():
    pts = [(0.9, 5.0), (0.8, 3.0), (0.85, 6.0), (0.7, 2.0), (0.9, 5.0)]
    assert pareto_front(pts, UP_DOWN) == [0, 1, 3, 4]  # (0.85, 6) is beaten by (0.9, 5)
    assert dominates((0.9, 5.0), (0.85, 6.0), UP_DOWN)
    assert not dominates((0.9, 5.0), (0.9, 5.0), UP_DOWN)
    # Rectangles against reference (0.5, 10): 0.4 * 5 + 0.3 * 2 = 2.6.
    assert hypervolume_2d([(0.9, 5.0), (0.8, 3.0)], (0.5, 10.0), UP_DOWN) == pytest.approx(2.6)


def grid_hypervolume(points, reference, n=400):
    """Independent oracle: fraction of a fine grid dominated by some point."""
    acc = np.linspace(reference[0], 1.0, n, endpoint=False) + (1.0 - reference[0]) / (2 * n)
    lat = np.linspace(0.0, reference[1], n, endpoint=False) + reference[1] / (2 * n)
    a, lt = np.meshgrid(acc, lat)
    covered = np.zeros_like(a, dtype=bool)
    for pa, pl in points:
        covered |= (a <= pa) & (lt >= pl)
    return covered.mean() * (1.0 - reference[0]) * reference[1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 10.0)), min_size=1, max_size=12))
def test_hypervolume_matches_a_grid(points):
    ref = (0.3, 8.0)
    exact = hypervolume_2d(points, ref, UP_DOWN)
    # The dominated region's boundary is a monotone staircase: it crosses at most 2 * 400
    # grid cells, so the grid is off by at most that many cells' area.
    assert exact == pytest.approx(
        grid_hypervolume(points, ref), abs=2 * 400 * (0.7 / 400) * (8.0 / 400)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=15
    )
)
def test_pareto_front_matches_brute_force(points):
    dirs = ["maximize", "minimize", "minimize"]
    front = set(pareto_front(points, dirs))
    for i, p in enumerate(points):
        beaten = any(all((q[0] >= p[0], q[1] <= p[1], q[2] <= p[2])) and q != p for q in points)
        assert (i in front) == (not beaten)
    # Every dominated point is dominated by some front member (fronts are complete).
    for i, p in enumerate(points):
        if i not in front:
            assert any(dominates(points[j], p, dirs) for j in front)


def test_hypervolume_ignores_points_beyond_the_reference():
    assert hypervolume_2d([(0.2, 1.0), (0.9, 20.0)], (0.5, 10.0), UP_DOWN) == 0.0


def test_nan_is_refused():
    with pytest.raises(ValueError):
        pareto_front([(float("nan"), 1.0)], UP_DOWN)


def test_front_of_all_permutations_is_order_independent():
    pts = [(0.9, 5.0), (0.8, 3.0), (0.85, 6.0), (0.7, 2.0)]
    want = {pts[i] for i in pareto_front(pts, UP_DOWN)}
    for perm in itertools.permutations(pts):
        assert {perm[i] for i in pareto_front(perm, UP_DOWN)} == want


def brute_mask(points, dirs):
    """Independent oracle: a point stays unless another is no worse everywhere and differs."""
    signs = [-1 if d == "maximize" else 1 for d in dirs]
    s = [tuple(v * k for v, k in zip(p, signs, strict=True)) for p in points]
    return [
        not any(all(a <= b for a, b in zip(q, p, strict=True)) and q != p for q in s) for p in s
    ]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30))
def test_two_objective_fast_path_matches_brute_force(points):
    for dirs in (UP_DOWN, ["minimize", "minimize"], ["maximize", "maximize"]):
        assert list(non_dominated(points, dirs)) == brute_mask(points, dirs)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)),
        min_size=1,
        max_size=40,
    )
)
def test_general_path_matches_brute_force(points):
    dirs = ["maximize", "minimize", "maximize", "minimize"]
    assert list(non_dominated(points, dirs)) == brute_mask(points, dirs)


def test_general_path_in_blocks_matches_one_block(monkeypatch):
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 8, size=(1300, 3)).astype(float)
    dirs = ["minimize"] * 3
    whole = non_dominated(pts, dirs)
    monkeypatch.setattr("nas.core.pareto._BLOCK", 7)
    assert (non_dominated(pts, dirs) == whole).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), max_size=20))
def test_ranks_peel_fronts(points):
    dirs = ["maximize", "minimize", "minimize"]
    ranks = pareto_ranks(points, dirs)
    left, rank = list(range(len(points))), 0
    while left:  # oracle: peel the brute-force front of what is left
        mask = brute_mask([points[i] for i in left], dirs)
        for i, keep in zip(list(left), mask, strict=True):
            if keep:
                assert ranks[i] == rank
        left = [i for i, keep in zip(left, mask, strict=True) if not keep]
        rank += 1


def test_one_objective_keeps_every_best():
    assert pareto_front([(3.0,), (5.0,), (5.0,)], ["maximize"]) == [1, 2]


def test_empty_and_malformed_input():
    assert pareto_front([], UP_DOWN) == []
    assert pareto_ranks([], UP_DOWN) == []
    assert hypervolume_2d([], (0.5, 10.0), UP_DOWN) == 0.0
    with pytest.raises(ValueError, match="shape"):
        pareto_front([(1.0, 2.0, 3.0)], UP_DOWN)
    with pytest.raises(ValueError, match="direction"):
        pareto_front([(1.0, 2.0)], ["up", "down"])
