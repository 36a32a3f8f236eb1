"""Analytic cost equals counted cost on 100 random samples of every shipped space."""

from __future__ import annotations

import numpy as np
import pytest

from nas.model.cost import cost
from nas.space.searchspace import list_spaces, load_space, sample_random
from tests.oracles import counted_macs, counted_params

N_SAMPLES = 100  # per space: each network is built and run to be counted
CHUNKS = 4  # split so xdist can spread the work


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("name", list_spaces())
def test_analytic_cost_equals_counted(name, chunk):
    space = load_space(name)
    rng = np.random.default_rng(1000 * chunk + 7)
    for _ in range(N_SAMPLES // CHUNKS):
        arch = sample_random(space, rng)
        c = cost(arch)
        assert c.params == counted_params(arch), arch.compact()
        assert c.macs == counted_macs(arch), arch.compact()
