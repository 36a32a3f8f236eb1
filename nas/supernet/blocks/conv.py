"""The conv and dil ops' block (``ConvBNAct``): one elastic conv-BN-activation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.model.ops.layers import ConvBNAct
from nas.supernet.blocks.base import ElasticBlock, Kwargs, kernels, register, widest
from nas.supernet.layers import ElasticConvBNAct


@register
class ElasticConvBlock(ElasticBlock):
    """Elastic kernel (transformed from the largest), input and output width."""

    mirrors = (ConvBNAct,)

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        super().__init__(module, recipes)
        self.layer = ElasticConvBNAct(
            widest(recipes, "cin"), widest(recipes, "cout"), kernels(recipes)
        )

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        return self.layer(x, r["cout"], r["kernel"], r["stride"], r["dilation"], r["act"], r["eps"])

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        return self.layer.extract(r["cin"], r["cout"], r["kernel"])
