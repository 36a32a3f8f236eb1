"""Zero: an edge that carries nothing (cell spaces such as NAS-Bench-201 use it)."""

from __future__ import annotations

from typing import Any

from torch import nn

from nas.model.ops.base import BlockSpec, Layer, Op, ZeroLayer
from nas.model.ops.layers import Zero
from nas.model.ops.registry import register


@register
class ZeroOp(Op):
    name = "zero"
    fields = frozenset()
    summary = "zero output (no parameters, no MACs)"

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        return (ZeroLayer(b.cout, b.stride),)

    def module_class(self) -> type[nn.Module]:
        return Zero

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(cout=b.cout, stride=b.stride)
