"""The res op's block (``BasicBlock``): two kxk convs and an identity or 1x1 shortcut."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.model.ops import get_op
from nas.supernet.blocks.base import ElasticBlock, Kwargs, kernels, register, widest
from nas.supernet.layers import ElasticConvBNAct, activation


def _projects(r: Kwargs) -> bool:
    """Whether BasicBlock built from ``r`` has a projection shortcut."""
    return bool(r["stride"] != 1 or r["cin"] != r["cout"])


@register
class ElasticResBlock(ElasticBlock):
    """Elastic kernel (both convs) and widths; the projection shortcut exists when some
    recipe needs it and runs exactly when the active block changes shape."""

    mirrors = (get_op("res").module_class(),)  # BasicBlock

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        super().__init__(module, recipes)
        cin, cout, ks = widest(recipes, "cin"), widest(recipes, "cout"), kernels(recipes)
        self.conv1 = ElasticConvBNAct(cin, cout, ks)
        self.conv2 = ElasticConvBNAct(cout, cout, ks)
        needed = any(_projects(r) for r in recipes)
        self.shortcut = ElasticConvBNAct(cin, cout, (1,)) if needed else None

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        cout, k, act, eps = r["cout"], r["kernel"], r["act"], r["eps"]
        y = self.conv1(x, cout, k, r["stride"], 1, act, eps)
        y = self.conv2(y, cout, k, 1, 1, "none", eps)
        if _projects(r):
            assert self.shortcut is not None
            x = self.shortcut(x, cout, 1, r["stride"], 1, "none", eps)
        return activation(act)(y + x)

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        cin, cout, k = r["cin"], r["cout"], r["kernel"]
        out = {f"conv1.{n}": v for n, v in self.conv1.extract(cin, cout, k).items()}
        out.update({f"conv2.{n}": v for n, v in self.conv2.extract(cout, cout, k).items()})
        if _projects(r):
            assert self.shortcut is not None
            out.update({f"shortcut.{n}": v for n, v in self.shortcut.extract(cin, cout, 1).items()})
        return out
