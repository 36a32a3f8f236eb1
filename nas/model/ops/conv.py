"""Standard convolution: conv k x k -> BN -> activation."""

from __future__ import annotations

from typing import Any

from torch import nn

from nas.model.ops.base import BlockSpec, ConvLayer, Layer, Op
from nas.model.ops.layers import ConvBNAct
from nas.model.ops.registry import register


@register
class Conv(Op):
    name = "conv"
    fields = frozenset({"kernel", "activation"})
    summary = "standard conv-BN-activation"

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        return (ConvLayer(b.cin, b.cout, b.kernel, b.stride, b.dilation),)

    def module_class(self) -> type[nn.Module]:
        return ConvBNAct

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(
            cin=b.cin,
            cout=b.cout,
            kernel=b.kernel,
            stride=b.stride,
            dilation=b.dilation,
            act=b.activation,
            eps=eps,
        )
