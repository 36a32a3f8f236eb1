"""Pareto helpers and rewards against independent computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.core.errors import NasError
from nas.core.objectives import Objective, dominates, hypervolume_2d, mnasnet_reward, pareto_front

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


def test_mnasnet_reward():
    assert mnasnet_reward(0.75, 80.0, 80.0) == 0.75
    # Twice the target latency costs 2 ** -0.07 ~ 4.7% of the accuracy.
    assert mnasnet_reward(0.75, 160.0, 80.0) == pytest.approx(0.75 * 2**-0.07)
    assert mnasnet_reward(0.75, 40.0, 80.0, w=-0.15) == pytest.approx(0.75 * 0.5**-0.15)
    with pytest.raises(ValueError):
        mnasnet_reward(0.5, 0.0, 1.0)


def test_objectives():
    assert Objective("accuracy").direction == "maximize"
    assert Objective("latency").better(1.0, 2.0)
    with pytest.raises(NasError, match="unknown metric 'speed'"):
        Objective("speed")


def test_nan_is_refused():
    with pytest.raises(ValueError):
        pareto_front([(float("nan"), 1.0)], UP_DOWN)


def test_front_of_all_permutations_is_order_independent():
    pts = [(0.9, 5.0), (0.8, 3.0), (0.85, 6.0), (0.7, 2.0)]
    want = {pts[i] for i in pareto_front(pts, UP_DOWN)}
    for perm in itertools.permutations(pts):
        assert {perm[i] for i in pareto_front(perm, UP_DOWN)} == want
