"""NAS-Bench-201's cell as an op: a 4-node DAG whose 6 edges each carry one of none,
skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 (``nas.bench.nb201``'s encoding).

The op of every edge comes from the architecture's cell (``Architecture.cell``, the
official arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``), handed to each block in
``BlockSpec.cell``: every block of every ``nb201`` stage has the same cell, as in the
benchmark's network.

Semantics are NAS-Bench-201's ``InferCell``: node j is the sum of op(node i) over its
incoming edges; ``nor_conv_kxk`` is ReLU -> Conv k x k (stride 1, "same" padding, no
bias) -> BatchNorm, ``avg_pool_3x3`` is a 3x3 stride-1 average ignoring the padding,
``skip_connect`` the identity and ``none`` contributes nothing (a node without
incoming edges is zero).

Dead edges (those :func:`nas.bench.nb201.prune` sets to ``none``: their source is not
reachable from the input, or their target does not reach the output) are *built*, as
the benchmark builds them, so parameter counts are the benchmark's; but they are never
*computed*: the forward pass is exactly that of the pruned cell, so cells that differ
only in dead edges cost the same MACs and time (and share a latency unit). The output
is NAS-Bench-201's, except for a conv edge out of a zero node, which NAS-Bench-201
evaluates to its BatchNorm's shift; here, as in ``prune``, it contributes nothing.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.model.ops.base import BlockSpec, ConvLayer, DeadLayer, Layer, Op, PoolLayer
from nas.model.ops.layers import Zero
from nas.model.ops.registry import register

__all__ = ["EXAMPLE_CELL", "NB201Cell", "NB201Op"]

#: A cell in which every edge is live and every op but ``none`` appears (docs, tests).
EXAMPLE_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)

_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


class NB201Cell(nn.Module):
    """NAS-Bench-201's cell on ``channels`` channels (stride 1, shape preserving).

    ``cell`` is the official arch string; ``live`` flags, per edge in the string's order,
    the edges the forward pass computes (the others are built but never run). Edges are
    ``self.edges[k]``: ReLU-Conv-BN as an nn.Sequential, nn.AvgPool2d, nn.Identity, or
    Zero for ``none`` (never run either).
    """

    def __init__(self, channels: int, cell: str, live: tuple[bool, ...], eps: float = 1e-5) -> None:
        super().__init__()
        ops = [e.rsplit("~", 1)[0] for node in cell.split("+") for e in node[1:-1].split("|")]
        edges = []
        for op in ops:
            if op == "nor_conv_1x1" or op == "nor_conv_3x3":
                k = 1 if op == "nor_conv_1x1" else 3
                edges.append(
                    nn.Sequential(
                        nn.ReLU(inplace=False),  # node values feed several edges
                        nn.Conv2d(channels, channels, k, 1, (k - 1) // 2, bias=False),
                        nn.BatchNorm2d(channels, eps=eps),
                    )
                )
            elif op == "avg_pool_3x3":
                edges.append(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
            elif op == "skip_connect":
                edges.append(nn.Identity())
            else:  # none
                edges.append(Zero(channels))
        self.edges = nn.ModuleList(edges)
        # Edge k goes from node sources[k] to node targets[k]; mode 0: not computed,
        # 1: the first computed edge into its node (assigns it), 2: adds to it.
        self.sources = [0, 0, 1, 0, 1, 2]
        self.targets = [1, 2, 2, 3, 3, 3]
        self.modes = [0, 0, 0, 0, 0, 0]
        for k in range(6):
            if live[k]:
                first = all(not live[m] or self.targets[m] != self.targets[k] for m in range(k))
                self.modes[k] = 1 if first else 2
        self.zero = not any(live)  # no path from input to output: the output is zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.zero:
            return torch.zeros_like(x)
        nodes = [x, x, x, x]  # every node is assigned by its first edge before it is read
        for k, edge in enumerate(self.edges):
            if self.modes[k] > 0:
                y = edge(nodes[self.sources[k]])
                t = self.targets[k]
                nodes[t] = y if self.modes[k] == 1 else nodes[t] + y
        return nodes[3]


def _edges(b: BlockSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(ops, pruned ops) of the block's cell."""
    if not b.cell:
        raise NasError("the nb201 op needs the architecture's cell", field="cell")
    ops = _parse(b.cell)
    return ops, _prune(ops)


# At most 5**6 distinct cells: cached, since a latency table's enumeration of a space
# meets each of them once per width and resolution.
@functools.cache
def _parse(cell: str) -> tuple[str, ...]:
    try:
        return nb201_cell.parse(cell)
    except NasError as err:
        raise NasError(f"not a NAS-Bench-201 cell: {err.reason}", field="cell") from None


@functools.lru_cache(maxsize=1 << 16)
def _layers(cin: int, cout: int, cell: str) -> tuple[Layer, ...]:
    ops = _parse(cell)
    out: list[Layer] = []
    for op, kept in zip(ops, _prune(ops), strict=True):
        if op in _KERNELS:
            conv = ConvLayer(cin, cout, _KERNELS[op])
            out.append(conv if kept != "none" else DeadLayer(conv))
        elif op == "avg_pool_3x3" and kept != "none":
            out.append(PoolLayer("avg", 3, 1))
    return tuple(out)


@functools.cache
def _prune(ops: tuple[str, ...]) -> tuple[str, ...]:
    return nb201_cell.prune(ops)


@register
class NB201Op(Op):
    name = "nb201"
    fields = frozenset()
    reads_cell = True
    summary = "NAS-Bench-201 cell (its edges' ops: the architecture's cell); C -> C, stride 1"

    def validate(self, b: BlockSpec) -> None:
        super().validate(b)
        if b.stride != 1:
            raise NasError(
                "a NAS-Bench-201 cell keeps the resolution: use stride 1", field="stride"
            )
        if b.cin != b.cout:
            raise NasError(
                f"a NAS-Bench-201 cell keeps the channels: out_channels must equal the "
                f"input's {b.cin}",
                field="out_channels",
            )
        if b.cell:  # empty while a Stage checks itself; Architecture supplies it
            _parse(b.cell)

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        """Every built edge in edge order: ReLU-Conv-BN as a ConvLayer (a DeadLayer on a
        dead edge: its parameters count, its MACs do not), avg pool as a PoolLayer,
        nothing for skip and none. Parameters and MACs are exact.

        The cost model walks these layers as a chain, so for a cell two figures are
        approximations: the receptive field adds up every live edge's kernel (an upper
        bound: the true one follows the longest path), and the live activations count a
        layer's input and output only (the cell holds up to four node maps at once).
        """
        _edges(b)  # the errors
        return _layers(b.cin, b.cout, b.cell)

    def module_class(self) -> type[nn.Module]:
        return NB201Cell

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        ops, pruned = _edges(b)
        live = tuple(op != "none" for op in pruned)
        return dict(channels=b.cout, cell=nb201_cell.format_cell(ops), live=live, eps=eps)
