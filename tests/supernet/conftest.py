"""Shared supernets for the tests: built once per session (they are read-only there,
except for tests that build their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from nas.space.searchspace import SearchSpace, load_space
from nas.supernet import Supernet
from tests.supernet.helpers import ALLOPS, perturb


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """These tensors are tiny: a second intra-op thread only waits on a shared 2-core
    machine (under load this directory took 53 s with two threads, 8 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def allops() -> SearchSpace:
    return load_space(ALLOPS)


@pytest.fixture(scope="session")
def allops_net(allops: SearchSpace) -> Supernet:
    return perturb(Supernet(allops)).eval()


@pytest.fixture(scope="session")
def tiny() -> SearchSpace:
    return load_space("tiny")


@pytest.fixture(scope="session")
def tiny_net(tiny: SearchSpace) -> Supernet:
    return perturb(Supernet(tiny)).eval()
