"""What every primitive declares: its block description, its layers (for the cost
model), its module (for the builder and the exporter) and its validation rules."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from nas.core.errors import NasError
from nas.model.ops.layers import ACTIVATIONS

__all__ = [
    "OPTIONAL_FIELDS",
    "BlockSpec",
    "ConvLayer",
    "DeadLayer",
    "Layer",
    "LinearLayer",
    "Op",
    "PoolLayer",
    "SELayer",
    "ZeroLayer",
    "se_channels",
]

#: Stage fields that only some ops read; an op that does not read one requires its default.
OPTIONAL_FIELDS: dict[str, Any] = {
    "kernel": 3,
    "expansion": 1,
    "dilation": 1,
    "se_ratio": 0.0,
    "activation": "relu",
}


@dataclass(frozen=True)
class BlockSpec:
    """One block of a stage, with its input channels resolved."""

    op: str
    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1
    dilation: int = 1
    expansion: int = 1
    se_ratio: float = 0.0
    activation: str = "relu"
    #: The architecture's NAS-Bench-201 cell (official arch string) for an op that reads
    #: it (``Op.reads_cell``); "" for every other op, so their blocks (and unit keys) are
    #: the same as before cells existed.
    cell: str = ""


# -- The layer description the analytic cost model reads (nas.model.cost) ---------------


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution, optionally followed by BatchNorm (whose affine pair counts)."""

    cin: int
    cout: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    bias: bool = False
    norm: bool = True

    @property
    def padding(self) -> int:
        return self.dilation * (self.kernel - 1) // 2


@dataclass(frozen=True)
class PoolLayer:
    """Max or average pooling with "same"-style padding (kernel - 1) // 2."""

    kind: str
    kernel: int
    stride: int

    @property
    def padding(self) -> int:
        return (self.kernel - 1) // 2


@dataclass(frozen=True)
class SELayer:
    """Squeeze-excitation on ``channels``: two 1x1 convs with bias on a 1x1 map."""

    channels: int
    reduced: int


@dataclass(frozen=True)
class ZeroLayer:
    """Zero output with ``cout`` channels, spatially subsampled by ``stride``."""

    cout: int
    stride: int


@dataclass(frozen=True)
class LinearLayer:
    """Fully connected layer with bias after global average pooling."""

    cin: int
    cout: int


@dataclass(frozen=True)
class DeadLayer:
    """Weights a block holds but never applies (a NAS-Bench-201 cell's conv on a dead
    edge): ``layer``'s parameters count, it costs no MACs and leaves the shape alone."""

    layer: ConvLayer


Layer = ConvLayer | PoolLayer | SELayer | ZeroLayer | LinearLayer | DeadLayer


class Op(ABC):
    """A primitive. Subclasses live one per file in ``nas/ops`` and are registered by name."""

    name: ClassVar[str]
    #: Optional stage fields (keys of OPTIONAL_FIELDS) this op reads.
    fields: ClassVar[frozenset[str]]
    #: Kernel sizes this op accepts (when it reads ``kernel``).
    kernels: ClassVar[tuple[int, ...]] = (1, 3, 5, 7)
    #: Expansion ratios this op accepts (when it reads ``expansion``).
    expansions: ClassVar[tuple[int, ...]] = (1,)
    #: Dilations this op accepts (when it reads ``dilation``).
    dilations: ClassVar[tuple[int, ...]] = (1,)
    #: Short description for `nas space show` and docs.
    summary: ClassVar[str] = ""
    #: Whether the op reads the architecture's cell (``Architecture.cell``, handed over
    #: in ``BlockSpec.cell``): an architecture has a cell exactly when one of its stages
    #: uses such an op.
    reads_cell: ClassVar[bool] = False

    def validate(self, b: BlockSpec) -> None:
        """Raise NasError(field=...) when ``b`` is not a block this op can build."""
        if b.stride not in (1, 2):
            raise NasError(f"stride must be 1 or 2, got {b.stride}", field="stride")
        if "kernel" in self.fields and b.kernel not in self.kernels:
            raise NasError(
                f"{self.name} takes kernel in {list(self.kernels)}, got {b.kernel}", field="kernel"
            )
        if "expansion" in self.fields and b.expansion not in self.expansions:
            raise NasError(
                f"{self.name} takes expansion in {list(self.expansions)}, got {b.expansion}",
                field="expansion",
            )
        if "dilation" in self.fields and b.dilation not in self.dilations:
            raise NasError(
                f"{self.name} takes dilation in {list(self.dilations)}, got {b.dilation}",
                field="dilation",
            )
        if "se_ratio" in self.fields and not 0.0 <= b.se_ratio < 1.0:
            raise NasError(f"se_ratio must be in [0, 1), got {b.se_ratio}", field="se_ratio")
        if "activation" in self.fields and b.activation not in ACTIVATIONS:
            raise NasError(
                f"unknown activation {b.activation!r} (known: {', '.join(ACTIVATIONS)})",
                field="activation",
            )

    @abstractmethod
    def layers(self, b: BlockSpec) -> tuple[Layer, ...]:
        """The main-path layers in execution order (what nas.model.cost counts)."""

    def residual(self, b: BlockSpec) -> bool:
        """Whether the block adds its input to its output (identity shortcut)."""
        return False

    @abstractmethod
    def module_class(self) -> type[nn.Module]:
        """The nn.Module class that realises this op (torch-only, exportable)."""

    @abstractmethod
    def module_kwargs(self, b: BlockSpec, *, eps: float, drop_path: float) -> dict[str, Any]:
        """Keyword arguments for ``module_class()``: the one recipe builder and exporter share."""

    def build(self, b: BlockSpec, *, eps: float = 1e-5, drop_path: float = 0.0) -> nn.Module:
        return self.module_class()(**self.module_kwargs(b, eps=eps, drop_path=drop_path))


def se_channels(cin: int, ratio: float) -> int:
    """Squeeze channels, relative to the block's input channels (EfficientNet's rule)."""
    return max(1, int(cin * ratio))
