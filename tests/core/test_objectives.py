"""Metrics and MnasNet's reward against hand-computed values."""

from __future__ import annotations

import pytest

from nas.core.errors import NasError
from nas.core.objectives import Objective, mnasnet_reward


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
