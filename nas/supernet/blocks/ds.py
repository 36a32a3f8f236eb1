"""The ds op's block (``DepthwiseSeparable``): depthwise kxk, optional SE, pointwise."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.model.ops import get_op
from nas.supernet.blocks.base import ElasticBlock, Kwargs, kernels, register, widest
from nas.supernet.layers import ElasticConvBNAct, ElasticSE


@register
class ElasticDSBlock(ElasticBlock):
    """Elastic kernel, input and output width; SE on/off shares the convs (the SE only
    rescales channels), its squeeze width following the active input width."""

    mirrors = (get_op("ds").module_class(),)  # DepthwiseSeparable

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        super().__init__(module, recipes)
        cin, se = widest(recipes, "cin"), widest(recipes, "se")
        self.dw = ElasticConvBNAct(cin, cin, kernels(recipes), depthwise=True)
        self.se = ElasticSE(cin, se) if se > 0 else None
        self.pw = ElasticConvBNAct(cin, widest(recipes, "cout"), (1,))

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        act, eps = r["act"], r["eps"]
        x = self.dw(x, r["cin"], r["kernel"], r["stride"], r["dilation"], act, eps)
        if r["se"] > 0:
            assert self.se is not None
            x = self.se(x, r["se"], act)
        return self.pw(x, r["cout"], 1, 1, 1, act, eps)

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        cin = r["cin"]
        out = {f"dw.{k}": v for k, v in self.dw.extract(cin, cin, r["kernel"]).items()}
        if r["se"] > 0:
            assert self.se is not None
            out.update({f"se.{k}": v for k, v in self.se.extract(cin, r["se"]).items()})
        out.update({f"pw.{k}": v for k, v in self.pw.extract(cin, r["cout"], 1).items()})
        return out
