"""Rank agreement against hand-computed values and scipy (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.core.stats import bootstrap, kendall_tau, ranks, spearman

scipy_stats = pytest.importorskip("scipy.stats")


def test_hand_values():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # Pairs (1,2) (1,3) (2,3): concordant, concordant, discordant -> (2 - 1) / 3.
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert list(ranks([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]
    # Ranks (1,2,3) against (1,3,2): 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5.
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=40).filter(
        lambda p: len({a for a, _ in p}) > 1 and len({b for _, b in p}) > 1
    )
)
def test_agree_with_scipy_with_ties(pairs):
    x, y = zip(*pairs, strict=True)
    assert kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-12)


def test_bootstrap_interval_brackets_and_is_seeded():
    rng = np.random.default_rng(3)
    x = rng.normal(size=80)
    y = x + rng.normal(scale=0.5, size=80)
    a = bootstrap(spearman, x, y, resamples=300, seed=1)
    assert a.low <= a.value <= a.high and a.level == 0.95
    assert a == bootstrap(spearman, x, y, resamples=300, seed=1)
    assert 0.0 < a.low < a.high < 1.0
    wide = bootstrap(spearman, x[:15], y[:15], resamples=300, seed=1)
    assert wide.high - wide.low > a.high - a.low  # fewer pairs, less certainty


def test_malformed_input():
    with pytest.raises(ValueError, match="equally long"):
        kendall_tau([1, 2], [1])
    with pytest.raises(ValueError, match="2\\+ values"):
        spearman([1], [1])
