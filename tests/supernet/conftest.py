"""Shared supernets for the tests: built once per session (they are read-only there,
except for tests that build their own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nas.space.searchspace import SearchSpace, load_space
from nas.supernet import Supernet

ALLOPS = Path(__file__).parent / "data" / "allops.toml"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """These tensors are tiny: a second intra-op thread only waits on a shared 2-core
    machine (under load this directory took 53 s with two threads, 8 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def perturb(net: Supernet, seed: int = 1) -> Supernet:
    """Make every shared tensor matter: random BN statistics and affine pairs, kernel
    transformation matrices away from the identity, non-zero SE biases. (Fresh ones
    would hide a wrong slice: unit BN and identity transforms map many slices alike.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif "matrices" in name:
                t.add_(0.2 * torch.randn(t.shape, generator=g))
            elif name.endswith(("running_mean", "bias")) or ".bn." in name:
                t.copy_(
                    0.3 * torch.randn(t.shape, generator=g)
                    + (1.0 if name.endswith("bn.weight") else 0.0)
                )
    return net


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
