"""Multi-objective successive halving on hand-made rung tables: dominated trials stop,
ties are broken by crowding distance then arrival, nobody waits for a rung to fill."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.core.errors import NasError
from nas.search.halving import ParetoHalving, crowding_distances, order, rung_levels

UP_DOWN = ("maximize", "minimize")


def test_rungs_are_geometric_and_below_the_last_epoch():
    assert rung_levels(1, 27, 3) == (1, 3, 9)
    assert rung_levels(2, 10, 2) == (2, 4, 8)
    assert rung_levels(1, 2, 4) == (1,)
    with pytest.raises(NasError, match="eta"):
        rung_levels(1, 9, 1)
    with pytest.raises(NasError, match="min_epochs"):
        rung_levels(9, 9, 3)


def test_crowding_distance_by_hand():
    # Middle point: neighbours span 3 of 3 in x and 3 of 3 in y -> 1 + 1.
    d = crowding_distances(np.array([[0.0, 3.0], [1.0, 1.0], [3.0, 0.0]]))
    assert d[0] == d[2] == math.inf and d[1] == pytest.approx(2.0)
    # Four points: inner ones get (2-0)/3 + (3-1)/3 and (3-1)/3 + (2-0)/3.
    d = crowding_distances(np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]]))
    assert d[1] == pytest.approx(4 / 3) and d[2] == pytest.approx(4 / 3)


def test_order_ranks_then_crowding_then_arrival():
    pts = [(0.9, 5.0), (0.8, 6.0), (0.95, 10.0), (0.5, 1.0)]
    # Front {0, 2, 3}: 2 and 3 are its ends (inf), 0 the middle; 1 is dominated by 0.
    assert order(pts, UP_DOWN) == [2, 3, 0, 1]
    # Identical points: arrival decides.
    assert order([(0.5, 1.0), (0.5, 1.0)], UP_DOWN) == [0, 1]


def test_promotions_on_a_hand_made_rung():
    h = ParetoHalving.geometric(min_epochs=1, max_epochs=4, eta=2, directions=UP_DOWN)
    assert h.report("t1", 1, (0.9, 5.0))  # first at the rung: ceil(1/2) = 1 goes on
    assert not h.report("t2", 1, (0.8, 6.0))  # dominated by t1, 1 of 2 goes on
    assert h.report("t3", 1, (0.95, 10.0))  # non-dominated; 2 of 3 go on (t1, t3 by arrival)
    assert h.report("t4", 1, (0.5, 1.0))  # an end of the front: 2 of 4 go on (t3, t4)
    assert h.report("t1", 3, (0.9, 5.0))  # between rungs: always on
    assert h.report("t1", 2, (0.91, 5.0))  # first at rung 2
    assert not h.report("t3", 2, (0.90, 10.0))  # dominated there by t1
    assert h.table()[0] == (
        1,
        ["t1", "t2", "t3", "t4"],
        [(0.9, 5.0), (0.8, 6.0), (0.95, 10.0), (0.5, 1.0)],
    )


def test_three_objectives_and_a_repeated_report():
    h = ParetoHalving(levels=(2,), eta=3, directions=("maximize", "minimize", "minimize"))
    assert h.report("a", 2, (0.9, 5.0, 100.0))
    assert not h.report("b", 2, (0.9, 5.0, 200.0))  # a is no worse anywhere, better in params
    assert not h.report("b", 2, (0.9, 5.0, 200.0))  # reported again: the same record
    assert len(h.table()[0][1]) == 2
    with pytest.raises(ValueError, match="expected 3 objective values"):
        h.report("c", 2, (0.9, 5.0))


def test_fixed_levels_are_checked():
    assert [r.epochs for r in ParetoHalving(levels=(12,), eta=3, directions=UP_DOWN).rungs] == [12]
    for levels, eta in (((), 3), ((12, 4), 3), ((12,), 1), ((0, 4), 2)):
        with pytest.raises(NasError, match="rungs need"):
            ParetoHalving(levels=levels, eta=eta, directions=UP_DOWN)
