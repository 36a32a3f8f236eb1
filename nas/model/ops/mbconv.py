"""Inverted residual / MBConv (MobileNetV2, EfficientNet)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.model.ops.base import BlockSpec, ConvLayer, Layer, Op, SELayer, se_channels
from nas.model.ops.layers import ConvBNAct, SqueezeExcite, drop_path, make_activation
from nas.model.ops.registry import register


class InvertedResidual(nn.Module):
    """1x1 expand -> BN -> act (left out at expansion 1), depthwise k x k -> BN -> act,
    optional squeeze-excitation, linear 1x1 projection -> BN; identity shortcut (with
    stochastic depth while training) when stride is 1 and channels match."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        expansion: int = 6,
        se: int = 0,
        act: str = "relu6",
        eps: float = 1e-5,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = cin * expansion
        if expansion != 1:
            self.expand = ConvBNAct(cin, hidden, 1, act=act, eps=eps)
        else:
            self.expand = make_activation("none")
        self.dw = ConvBNAct(
            hidden, hidden, kernel, stride, dilation, groups=hidden, act=act, eps=eps
        )
        self.se = SqueezeExcite(hidden, se, act) if se > 0 else make_activation("none")
        self.project = ConvBNAct(hidden, cout, 1, act="none", eps=eps)
        self.residual = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        if self.residual:
            y = x + drop_path(y, self.drop_path, self.training)
        return y


@register
class MBConv(Op):
    name = "ir"
    fields = frozenset({"kernel", "expansion", "dilation", "se_ratio", "activation"})
    kernels = (3, 5, 7)
    expansions = (1, 2, 3, 4, 6, 8)
    dilations = (1, 2, 3)
    summary = "inverted residual / MBConv: 1x1 expand, depthwise kxk, SE, linear 1x1"

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        hidden = b.cin * b.expansion
        expand = (ConvLayer(b.cin, hidden, 1),) if b.expansion != 1 else ()
        dw = ConvLayer(hidden, hidden, b.kernel, b.stride, b.dilation, groups=hidden)
        se = (SELayer(hidden, se_channels(b.cin, b.se_ratio)),) if b.se_ratio > 0 else ()
        return (*expand, dw, *se, ConvLayer(hidden, b.cout, 1))

    def residual(self, b: BlockSpec) -> bool:
        return b.stride == 1 and b.cin == b.cout

    def module_class(self) -> type[nn.Module]:
        return InvertedResidual

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(
            cin=b.cin,
            cout=b.cout,
            kernel=b.kernel,
            stride=b.stride,
            dilation=b.dilation,
            expansion=b.expansion,
            se=se_channels(b.cin, b.se_ratio) if b.se_ratio > 0 else 0,
            act=b.activation,
            eps=eps,
            drop_path=drop_path if self.residual(b) else 0.0,
        )
