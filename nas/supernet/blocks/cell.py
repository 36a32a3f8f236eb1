"""The nb201 op's block (``NB201Cell``): one NAS-Bench-201 cell, single-path per edge.

Each edge keeps its own ReLU-Conv-BN weights per conv op it offers (1x1 and 3x3 apart,
as in the benchmark's one-shot supernets); pooling, skip and none hold nothing. The
forward is ``NB201Cell``'s: the recipe's ``live`` flags say which edges run, and a
dead edge's convolution is still extracted (the built cell holds its weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.model.ops import get_op
from nas.supernet.blocks.base import ElasticBlock, Kwargs, register, widest
from nas.supernet.layers import ElasticConvBNAct

_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
# Edge k runs from node _SOURCES[k] to node _TARGETS[k] (the arch string's order).
_SOURCES = (0, 0, 1, 0, 1, 2)
_TARGETS = (1, 2, 2, 3, 3, 3)


def _ops(cell: str) -> list[str]:
    return [e.rsplit("~", 1)[0] for node in cell.split("+") for e in node[1:-1].split("|")]


@register
class ElasticCellBlock(ElasticBlock):
    """Elastic channels; per edge, one weight set per conv op."""

    mirrors = (get_op("nb201").module_class(),)  # NB201Cell

    def __init__(self, module: type[nn.Module], recipes: Sequence[Kwargs]) -> None:
        super().__init__(module, recipes)
        c = widest(recipes, "channels")
        pairs = sorted(
            {(k, op) for r in recipes for k, op in enumerate(_ops(r["cell"])) if op in _KERNELS}
        )
        self.convs = nn.ModuleDict(
            {f"{k}_{op}": ElasticConvBNAct(c, c, (_KERNELS[op],)) for k, op in pairs}
        )

    def _edge(self, k: int, op: str, x: torch.Tensor, eps: float) -> torch.Tensor:
        if op in _KERNELS:
            # ReLU first and out of place: a node's value feeds several edges.
            return self.convs[f"{k}_{op}"](F.relu(x), x.shape[1], _KERNELS[op], 1, 1, "none", eps)
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        if op == "skip_connect":
            return x
        raise AssertionError(f"edge {k} ({op}) is never live")

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        live, ops = r["live"], _ops(r["cell"])
        if not any(live):  # no path from input to output
            return torch.zeros_like(x)
        nodes = [x, x, x, x]  # each node is assigned by its first live edge before use
        for k in range(6):
            if not live[k]:
                continue
            y = self._edge(k, ops[k], nodes[_SOURCES[k]], r["eps"])
            first = all(not live[m] or _TARGETS[m] != _TARGETS[k] for m in range(k))
            t = _TARGETS[k]
            nodes[t] = y if first else nodes[t] + y
        return nodes[3]

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        c, out = r["channels"], {}
        for k, op in enumerate(_ops(r["cell"])):
            if op in _KERNELS:
                state = self.convs[f"{k}_{op}"].extract(c, c, _KERNELS[op])
                # NB201Cell's edge is nn.Sequential(ReLU, Conv2d, BatchNorm2d).
                out[f"edges.{k}.1.weight"] = state.pop("conv.weight")
                out.update({f"edges.{k}.2.{n[3:]}": v for n, v in state.items()})
        return out
