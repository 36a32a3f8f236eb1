"""``build(arch) -> nn.Module``: every block comes from the op registry."""

from __future__ import annotations

import math

import torch
from torch import nn

from nas.arch import Architecture
from nas.ops import get_op
from nas.ops.layers import ConvBNAct, Head

__all__ = ["Network", "block_drop_paths", "build", "init_weights"]


class Network(nn.Module):
    """stem -> stages (each an nn.Sequential of blocks) -> head.

    The exporter writes a standalone class with the same attribute names, so state
    dicts move between the two unchanged.
    """

    def __init__(self, stem: nn.Module, stages: nn.Sequential, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def block_drop_paths(arch: Architecture) -> list[float]:
    """Stochastic-depth rate per block, growing linearly with depth (EfficientNet's rule)."""
    n = arch.num_blocks
    return [arch.drop_path * k / n for k in range(n)]


def build(arch: Architecture, *, seed: int | None = 0) -> Network:
    """Build the network for ``arch``; ``seed`` fixes the initial weights (None: torch's RNG)."""
    eps = arch.norm_eps
    stem = ConvBNAct(
        arch.in_channels,
        arch.stem.channels,
        arch.stem.kernel,
        arch.stem.stride,
        act=arch.stem.activation,
        eps=eps,
    )
    rates = iter(block_drop_paths(arch))
    stages: list[nn.Sequential] = [nn.Sequential() for _ in arch.stages]
    for i, _, block in arch.blocks():
        stages[i].append(get_op(block.op).build(block, eps=eps, drop_path=next(rates)))
    head = Head(
        arch.out_channels,
        arch.head.channels,
        arch.num_classes,
        dropout=arch.head.dropout,
        act=arch.head.activation,
        eps=eps,
    )
    net = Network(stem, nn.Sequential(*stages), head)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    init_weights(net, generator)
    return net


def init_weights(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """torchvision's MobileNet/EfficientNet scheme: Kaiming-normal (fan-out) convs, zero
    biases, unit BN, uniform linear layers scaled by 1/sqrt(fan-out)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound, generator=generator)
            nn.init.zeros_(m.bias)
