"""``build(arch) -> nn.Module``: every block comes from the op registry.

``layout(arch)`` is the one recipe: each module as (class, keyword arguments). The
builder instantiates it; the exporter writes it out as source. They cannot drift.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.core.errors import NasError, one_line
from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.model.ops import get_op
from nas.model.ops.layers import ConvBNAct, Head

__all__ = [
    "Layout",
    "ModuleRecipe",
    "Network",
    "block_drop_paths",
    "build",
    "check_fits",
    "init_weights",
    "layout",
]


@dataclass(frozen=True)
class ModuleRecipe:
    """A module to create: ``cls(**kwargs)``."""

    cls: type[nn.Module]
    kwargs: dict[str, Any]

    def create(self) -> nn.Module:
        return self.cls(**self.kwargs)


@dataclass(frozen=True)
class Layout:
    """The network as recipes: stem, blocks grouped by stage, head."""

    stem: ModuleRecipe
    stages: tuple[tuple[ModuleRecipe, ...], ...]
    head: ModuleRecipe


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
    return [round(arch.drop_path * k / n, 6) for k in range(n)]


def layout(arch: Architecture) -> Layout:
    eps = arch.norm_eps
    stem = ModuleRecipe(
        ConvBNAct,
        dict(
            cin=arch.in_channels,
            cout=arch.stem.channels,
            kernel=arch.stem.kernel,
            stride=arch.stem.stride,
            act=arch.stem.activation,
            eps=eps,
        ),
    )
    rates = iter(block_drop_paths(arch))
    stages: list[list[ModuleRecipe]] = [[] for _ in arch.stages]
    for i, _, block in arch.blocks():
        op = get_op(block.op)
        kwargs = op.module_kwargs(block, eps=eps, drop_path=next(rates))
        stages[i].append(ModuleRecipe(op.module_class(), kwargs))
    head = ModuleRecipe(
        Head,
        dict(
            cin=arch.out_channels,
            channels=arch.head.channels,
            num_classes=arch.num_classes,
            dropout=arch.head.dropout,
            act=arch.head.activation,
            eps=eps,
        ),
    )
    return Layout(stem, tuple(tuple(s) for s in stages), head)


def build(arch: Architecture, *, seed: int | None = 0) -> Network:
    """Build the network for ``arch``; ``seed`` fixes the initial weights (None: torch's RNG).

    A network whose weights alone cannot fit in this machine's memory is refused before
    anything is allocated (the allocator's own failure is a traceback, or the OOM killer).
    """
    check_fits(arch)
    plan = layout(arch)
    stages = nn.Sequential(*(nn.Sequential(*(r.create() for r in s)) for s in plan.stages))
    net = Network(plan.stem.create(), stages, plan.head.create())
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    init_weights(net, generator)
    return net


def physical_memory() -> int:
    """Bytes of memory this machine has (0 where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0


def check_fits(arch: Architecture) -> None:
    """Refuse, before allocating, a network whose weights alone exceed this machine's
    memory (the allocator would fail with a traceback, or the machine swap)."""
    need = cost(arch).params * 4  # float32 weights, before any gradient or activation
    have = physical_memory()
    if have and need > have:
        raise NasError(
            f"its {need / 1e9:,.1f} GB of float32 weights exceed this machine's "
            f"{have / 1e9:,.1f} GB of memory",
            field="channels",
        )


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


def load_weights(arch: Architecture, path: str | Path) -> Network:
    """Build ``arch`` and load a state_dict saved from it (``torch.load(weights_only=True)``)."""
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError("no such weights file", source=str(p)) from None
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise NasError(f"not a loadable state_dict ({one_line(err)})", source=str(p)) from None
    if not isinstance(state, dict):
        raise NasError(f"expected a state_dict, found {type(state).__name__}", source=str(p))
    net = build(arch)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [
        f"{k} has shape {tuple(v.shape)}, expected {expected[k]}"
        for k, v in state.items()
        if k in expected and (not isinstance(v, torch.Tensor) or tuple(v.shape) != expected[k])
    ]
    if problems:
        raise NasError(
            f"weights do not fit architecture {arch.short_id}: {len(problems)} problems "
            f"(first: {problems[0]})",
            source=str(p),
        )
    net.load_state_dict(state)
    return net
