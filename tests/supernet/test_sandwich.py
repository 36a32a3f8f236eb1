"""The sandwich rule: extremes, seeding, and that a few steps on digits teach."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.space.searchspace import SearchSpace, load_space, sample_random
from nas.supernet import (
    Sandwich,
    SandwichLoss,
    Supernet,
    SupernetSpec,
    largest,
    reestimate_bn,
    sandwich_step,
    smallest,
)

Digits = tuple[torch.Tensor, torch.Tensor]


def test_extremes_bound_the_space(tiny: SearchSpace, tiny_net: Supernet) -> None:
    big, small = largest(tiny_net.spec), smallest(tiny_net.spec)
    assert [s.out_channels for s in big.stages] == [16, 32, 48, 64]
    assert all(s.repeats == 2 and s.kernel == 7 for s in big.stages)
    assert big.head.channels == 64 and big.stem.channels == 16 and big.resolution == 32
    assert [s.out_channels for s in small.stages] == [8, 16, 32, 48]
    assert all(s.repeats == 1 and s.kernel == 3 and s.se_ratio == 0 for s in small.stages)
    assert small.head.channels == 0
    lo, hi = cost(small).macs, cost(big).macs
    for seed in range(30):
        arch = sample_random(tiny, seed).replace(resolution=big.resolution)
        assert lo <= cost(arch.replace(resolution=small.resolution)).macs
        assert cost(arch).macs <= hi


@pytest.fixture(scope="module")
def digits() -> Digits:
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    return x, torch.tensor(labels)


def _train(
    space: SearchSpace, digits: Digits, steps: int, seed: int
) -> tuple[Supernet, Sandwich, list[SandwichLoss]]:
    torch.manual_seed(seed)
    net = Supernet(space, seed=seed).train()
    sandwich = Sandwich.of(net, random_subnets=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    rng, batches = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    x, y = digits
    losses = []
    for _ in range(steps):
        idx = torch.from_numpy(batches.choice(1500, 64, replace=False))
        losses.append(sandwich_step(net, sandwich, x[idx], y[idx], opt, rng))
    return net, sandwich, losses


def _held_out_loss(net: Supernet, arch: Architecture, digits: Digits) -> float:
    x, y = digits
    reestimate_bn(net, [x[:256]], arch=arch)
    net.eval()
    with torch.no_grad():
        loss = F.cross_entropy(net(x[1500:], arch), y[1500:]).item()
    net.train()
    return loss


def test_a_few_steps_on_digits_lower_the_loss(tiny: SearchSpace, digits: Digits) -> None:
    net, sandwich, losses = _train(tiny, digits, steps=0, seed=0)
    before = [_held_out_loss(net, a, digits) for a in (sandwich.largest, sandwich.smallest)]
    net, sandwich, losses = _train(tiny, digits, steps=12, seed=0)
    after = [_held_out_loss(net, a, digits) for a in (sandwich.largest, sandwich.smallest)]
    assert after[0] < 0.6 * before[0]  # the largest learns from the labels
    assert after[1] < before[1]  # the smallest from the largest
    assert losses[-1].largest < losses[0].largest


def test_seeded_steps_repeat(tiny: SearchSpace, digits: Digits) -> None:
    _, _, first = _train(tiny, digits, steps=2, seed=3)
    _, _, again = _train(tiny, digits, steps=2, seed=3)
    assert first == again


def test_bad_recipe(tiny_net: Supernet) -> None:
    with pytest.raises(ValueError):
        Sandwich.of(tiny_net, random_subnets=-1)


def test_extremes_of_a_cell_space() -> None:
    spec = SupernetSpec.from_space(load_space("nasbench201"))
    assert largest(spec).cell_ops == ("nor_conv_3x3",) * 6
    assert smallest(spec).cell_ops == ("none",) * 6
