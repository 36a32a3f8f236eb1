"""ResNet's basic block: two 3x3 (kxk) convs with an identity or 1x1-projection shortcut."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.model.ops.base import BlockSpec, ConvLayer, Layer, Op
from nas.model.ops.layers import ConvBNAct, make_activation
from nas.model.ops.registry import register


class BasicBlock(nn.Module):
    """conv kxk -> BN -> act -> conv kxk -> BN, plus the input (projected by a strided
    1x1 conv + BN when the shape changes), then act."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        act: str = "relu",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, kernel, stride, act=act, eps=eps)
        self.conv2 = ConvBNAct(cout, cout, kernel, 1, act="none", eps=eps)
        if stride != 1 or cin != cout:
            self.shortcut = ConvBNAct(cin, cout, 1, stride, act="none", eps=eps)
        else:
            self.shortcut = make_activation("none")
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


@register
class ResBlock(Op):
    name = "res"
    fields = frozenset({"kernel", "activation"})
    kernels = (3, 5)
    summary = "ResNet basic block: two kxk convs + identity/projection shortcut"

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        main = (ConvLayer(b.cin, b.cout, b.kernel, b.stride), ConvLayer(b.cout, b.cout, b.kernel))
        if b.stride != 1 or b.cin != b.cout:
            # The strided 1x1 projection runs beside the main path. In this chain it is
            # counted after it as a stride-1 1x1 conv on the output grid: the same
            # parameters, MACs (cout * cin * H_out * W_out) and output shape.
            return (*main, ConvLayer(b.cin, b.cout, 1, 1))
        return main

    def residual(self, b: BlockSpec) -> bool:
        return b.stride == 1 and b.cin == b.cout

    def module_class(self) -> type[nn.Module]:
        return BasicBlock

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(
            cin=b.cin, cout=b.cout, kernel=b.kernel, stride=b.stride, act=b.activation, eps=eps
        )
