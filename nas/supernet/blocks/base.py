"""What every elastic block declares, and the registry that finds one per module class.

A block is keyed by the nn.Module class the builder would create for it (ConvBNAct,
DepthwiseSeparable, InvertedResidual, ...), and it runs and extracts from the very
keyword arguments the builder passes that class (``Op.module_kwargs``). So the
supernet's path and the built network cannot disagree about a block's shape: both read
one recipe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from nas.core.errors import NasError
from nas.model.ops import BlockSpec

__all__ = ["ELASTIC", "ElasticBlock", "Kwargs", "elastic_block", "kernels", "register", "widest"]

#: The recipe of one block: the builder's keyword arguments for its module class.
Kwargs = Mapping[str, Any]


class ElasticBlock(nn.Module, ABC):
    """One block position of one op family in one stage: the widest weights that every
    recipe of ``recipes`` (all the blocks this position may have to run) slices from."""

    #: The built module classes this block mirrors.
    mirrors: ClassVar[tuple[type[nn.Module], ...]]

    @classmethod
    def family(cls, b: BlockSpec) -> str:
        """Blocks with the same family share weights. Dilation splits families: the
        same taps spread 1, 2 or 3 pixels apart see different neighbourhoods, so
        sharing them would tie unrelated filters."""
        return f"{b.op}_d{b.dilation}"

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        """``module`` is the class every recipe builds; ``recipes`` are non-empty."""
        super().__init__()
        if module not in self.mirrors or not recipes:
            raise ValueError(f"{type(self).__name__} cannot serve {module.__name__}")

    @abstractmethod
    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        """Run the block that the recipe ``r`` describes."""

    @abstractmethod
    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        """The state dict of the module the builder creates from ``r``, key for key."""


ELASTIC: dict[type[nn.Module], type[ElasticBlock]] = {}

T = TypeVar("T", bound=type[ElasticBlock])


def register(cls: T) -> T:
    """Class decorator: ``cls`` serves every module class in ``cls.mirrors``."""
    for module in cls.mirrors:
        if module in ELASTIC:
            raise RuntimeError(f"{module.__name__} has two elastic blocks")
        ELASTIC[module] = cls
    return cls


def elastic_block(module: type[nn.Module], *, op: str, field: str) -> type[ElasticBlock]:
    """The elastic block for ``module``, or a NasError naming the stage's op field."""
    try:
        return ELASTIC[module]
    except KeyError:
        raise NasError(
            f"op {op!r} ({module.__name__}) has no supernet block yet", field=field
        ) from None


def widest(recipes: Sequence[Kwargs], key: str) -> int:
    """The largest value of an integer argument over the recipes (0 when absent)."""
    return max((int(r.get(key, 0)) for r in recipes), default=0)


def kernels(recipes: Sequence[Kwargs]) -> tuple[int, ...]:
    """Every kernel size the recipes use, ascending."""
    return tuple(sorted({int(r["kernel"]) for r in recipes}))
