"""Max and average pooling ("same"-style padding; averages ignore the padding)."""

from __future__ import annotations

from typing import Any

from torch import nn

from nas.core.errors import NasError
from nas.model.ops.base import BlockSpec, Layer, Op, PoolLayer
from nas.model.ops.registry import register


class _Pool(Op):
    kind: str
    fields = frozenset({"kernel"})
    kernels = (2, 3, 5)

    def validate(self, b: BlockSpec) -> None:
        super().validate(b)
        if b.cin != b.cout:
            raise NasError(
                f"{self.name} cannot change channels: out_channels must equal the input's {b.cin}",
                field="out_channels",
            )

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        return (PoolLayer(self.kind, b.kernel, b.stride),)


@register
class MaxPool(_Pool):
    name = "maxpool"
    kind = "max"
    summary = "max pooling kxk"

    def module_class(self) -> type[nn.Module]:
        return nn.MaxPool2d

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(kernel_size=b.kernel, stride=b.stride, padding=(b.kernel - 1) // 2)


@register
class AvgPool(_Pool):
    name = "avgpool"
    kind = "avg"
    summary = "average pooling kxk (padding excluded from the mean)"

    def module_class(self) -> type[nn.Module]:
        return nn.AvgPool2d

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return dict(
            kernel_size=b.kernel,
            stride=b.stride,
            padding=(b.kernel - 1) // 2,
            count_include_pad=False,
        )
