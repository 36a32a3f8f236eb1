"""Identity / skip: the block is left out (how depth shrinks in cell and chain spaces)."""

from __future__ import annotations

from typing import Any

from torch import nn

from nas.core.errors import NasError
from nas.model.ops.base import BlockSpec, Layer, Op
from nas.model.ops.registry import register


@register
class Skip(Op):
    name = "skip"
    fields = frozenset()
    summary = "identity (needs stride 1 and equal channels)"

    def validate(self, b: BlockSpec) -> None:
        super().validate(b)
        if b.stride != 1:
            raise NasError("skip cannot change resolution: use stride 1", field="stride")
        if b.cin != b.cout:
            raise NasError(
                f"skip cannot change channels: out_channels must equal the input's {b.cin}",
                field="out_channels",
            )

    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        return ()

    def module_class(self) -> type[nn.Module]:
        return nn.Identity

    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        return {}
