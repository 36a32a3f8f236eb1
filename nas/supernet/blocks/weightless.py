"""Blocks without weights (max/avg pooling, skip, zero): the built module itself runs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.model.ops.layers import Zero
from nas.supernet.blocks.base import ElasticBlock, Kwargs, register


@register
class WeightlessBlock(ElasticBlock):
    """Nothing to share: each forward creates the module from its recipe (pooling and
    identity modules cost nothing to create), so it behaves as the built network's
    block by construction."""

    mirrors = (nn.MaxPool2d, nn.AvgPool2d, nn.Identity, Zero)

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        super().__init__(module, recipes)
        if list(module(**recipes[0]).state_dict()):
            raise ValueError(f"{module.__name__} holds state: it needs an elastic block")
        self.built = module

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        return self.built(**r)(x)

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        return {}
