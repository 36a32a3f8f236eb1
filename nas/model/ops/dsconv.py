"""Depthwise separable convolution (MobileNetV1's block).

Unlike an inverted residual at expansion 1 (linear projection plus shortcut), the
pointwise conv here is followed by the activation and there is no shortcut, so the two
ops never describe the same network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.model.ops.base import BlockSpec, ConvLayer, Layer, Op, SELayer, se_channels
from nas.model.ops.layers import ConvBNAct, SqueezeExcite, make_activation
from nas.model.ops.registry import register


class DepthwiseSeparable(nn.Module):
    """Depthwise k x k -> BN -> act (-> SE) -> pointwise 1x1 -> BN -> act."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        se: int = 0,
        act: str = "relu",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.dw = ConvBNAct(cin, cin, kernel, stride, dilation, groups=cin, act=act, eps=eps)
        self.se = SqueezeExcite(cin, se, act) if se > 0 else make_activation("none")
        self.pw = ConvBNAct(cin, cout, 1, act=act, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.se(self.dw(x)))


@register
class DSConv(Op):
    name = "ds"
    fields = frozenset({"kernel", "dilation", "se_ratio", "activation"})
    kernels = (3, 5, 7)
    dilations = (1, 2, 3)
    summary = "depthwise separable: depthwise kxk + pointwise 1x1, each BN + act (+SE)"

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        dw = ConvLayer(b.cin, b.cin, b.kernel, b.stride, b.dilation, groups=b.cin)
        se = (SELayer(b.cin, se_channels(b.cin, b.se_ratio)),) if b.se_ratio > 0 else ()
        return (dw, *se, ConvLayer(b.cin, b.cout, 1))

    def module_class(self) -> type[nn.Module]:
        return DepthwiseSeparable

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(
            cin=b.cin,
            cout=b.cout,
            kernel=b.kernel,
            stride=b.stride,
            dilation=b.dilation,
            se=se_channels(b.cin, b.se_ratio) if b.se_ratio > 0 else 0,
            act=b.activation,
            eps=eps,
        )
