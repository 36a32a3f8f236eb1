"""The ir op's block (``InvertedResidual``): expand, depthwise, optional SE, project."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.model.ops import BlockSpec, get_op
from nas.model.ops.layers import drop_path
from nas.supernet.blocks.base import ElasticBlock, Kwargs, kernels, register, widest
from nas.supernet.layers import ElasticConvBNAct, ElasticSE


@register
class ElasticIRBlock(ElasticBlock):
    """Elastic kernel, width and expansion (the hidden width ``cin * expansion`` is the
    leading channels of the widest hidden layer), SE on/off sharing the convs.

    Expansion 1 is its own family: that block has no expand conv, so its depthwise conv
    filters the block's input rather than expanded features, and sharing its filters
    with the expanded blocks' would tie filters of different inputs.
    """

    mirrors = (get_op("ir").module_class(),)  # InvertedResidual

    @classmethod
    def family(cls, b: BlockSpec) -> str:
        return f"{super().family(b)}_{'e1' if b.expansion == 1 else 'eN'}"

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        super().__init__(module, recipes)
        cin, cout = widest(recipes, "cin"), widest(recipes, "cout")
        hidden = max(r["cin"] * r["expansion"] for r in recipes)
        expands = {r["expansion"] != 1 for r in recipes}
        if len(expands) != 1:
            raise ValueError("expansion 1 and expansion > 1 are separate families")
        self.expand = ElasticConvBNAct(cin, hidden, (1,)) if expands.pop() else None
        self.dw = ElasticConvBNAct(hidden, hidden, kernels(recipes), depthwise=True)
        se = widest(recipes, "se")
        self.se = ElasticSE(hidden, se) if se > 0 else None
        self.project = ElasticConvBNAct(hidden, cout, (1,))

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        act, eps = r["act"], r["eps"]
        hidden = r["cin"] * r["expansion"]
        h = x
        if r["expansion"] != 1:
            assert self.expand is not None
            h = self.expand(x, hidden, 1, 1, 1, act, eps)
        h = self.dw(h, hidden, r["kernel"], r["stride"], r["dilation"], act, eps)
        if r["se"] > 0:
            assert self.se is not None
            h = self.se(h, r["se"], act)
        y = self.project(h, r["cout"], 1, 1, 1, "none", eps)
        if r["stride"] == 1 and r["cin"] == r["cout"]:  # InvertedResidual.residual
            y = x + drop_path(y, r["drop_path"], self.training)
        return y

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        cin, hidden = r["cin"], r["cin"] * r["expansion"]
        out: dict[str, torch.Tensor] = {}
        if r["expansion"] != 1:
            assert self.expand is not None
            out.update({f"expand.{k}": v for k, v in self.expand.extract(cin, hidden, 1).items()})
        dw = self.dw.extract(hidden, hidden, r["kernel"])
        out.update({f"dw.{k}": v for k, v in dw.items()})
        if r["se"] > 0:
            assert self.se is not None
            out.update({f"se.{k}": v for k, v in self.se.extract(hidden, r["se"]).items()})
        project = self.project.extract(hidden, r["cout"], 1)
        out.update({f"project.{k}": v for k, v in project.items()})
        return out
