"""The pieces a latency table measures separately: the stem, every block, the head.

A unit is an op configuration at a given input shape; its ``key`` (in the style of
Once-for-All's table, ``op-in:CxHxW-out:CxHxW-kernel-stride-expansion-...``) is what
the table stores. ``units_of(arch)`` splits one network into units; ``space_units``
lists every unit any architecture of a space can contain.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from torch import nn

from nas.arch import Architecture, Stage
from nas.cost import Shape, block_output_shape
from nas.errors import NasError
from nas.ops import BlockSpec, get_op
from nas.ops.layers import Head
from nas.space import SearchSpace, choices

__all__ = ["BlockUnit", "HeadUnit", "Unit", "space_units", "units_of"]


def _shape(shape: Shape) -> str:
    return "x".join(map(str, shape))


@functools.lru_cache(maxsize=1 << 16)
def _block_key(b: BlockSpec, in_shape: Shape) -> tuple[str, Shape]:
    """(key, output shape) of a block; memoised: a space has only thousands of units, and
    predicting during a search meets the same ones again and again."""
    out = block_output_shape(b, in_shape)
    key = (
        f"{b.op}-in:{_shape(in_shape)}-out:{_shape(out)}-k{b.kernel}-s{b.stride}"
        f"-e{b.expansion}-d{b.dilation}-se{b.se_ratio:g}-{b.activation}"
    )
    return key, out


@dataclass(frozen=True)
class BlockUnit:
    """One block (the stem is a ``conv`` block) applied to an input of ``in_shape``."""

    block: BlockSpec
    in_shape: Shape

    @property
    def key(self) -> str:
        return _block_key(self.block, self.in_shape)[0]

    @property
    def out_shape(self) -> Shape:
        return _block_key(self.block, self.in_shape)[1]

    def module(self, eps: float = 1e-5) -> nn.Module:
        return get_op(self.block.op).build(self.block, eps=eps)


@dataclass(frozen=True)
class HeadUnit:
    """The classifier head (1x1 conv, global pooling, linear) on an input of ``in_shape``."""

    in_shape: Shape
    channels: int
    num_classes: int
    activation: str

    @property
    def key(self) -> str:
        return f"head-in:{_shape(self.in_shape)}-c{self.channels}-n{self.num_classes}-{self.activation}"

    def module(self, eps: float = 1e-5) -> nn.Module:
        c = self.in_shape[0]
        return Head(c, self.channels, self.num_classes, act=self.activation, eps=eps)


Unit = BlockUnit | HeadUnit


def _stem_block(in_channels: int, channels: int, kernel: int, stride: int, act: str) -> BlockSpec:
    # The stem is ConvBNAct, exactly the `conv` op's module.
    return BlockSpec(
        "conv", cin=in_channels, cout=channels, kernel=kernel, stride=stride, activation=act
    )


def units_of(arch: Architecture) -> list[Unit]:
    """The units of ``arch`` in execution order."""
    stem = arch.stem
    first = _stem_block(arch.in_channels, stem.channels, stem.kernel, stem.stride, stem.activation)
    shape: Shape = (arch.in_channels, arch.resolution, arch.resolution)
    units: list[Unit] = []
    for block in (first, *(b for _, _, b in arch.blocks())):
        unit = BlockUnit(block, shape)
        units.append(unit)
        shape = unit.out_shape
    units.append(HeadUnit(shape, arch.head.channels, arch.num_classes, arch.head.activation))
    return units


def space_units(space: SearchSpace) -> list[Unit]:
    """Every unit reachable in ``space`` (each once), in a stable order.

    Follows the reachable (channels, size) states stage by stage, so only shapes that
    some architecture of the space really produces are listed.
    """
    ch = choices(space)
    found: dict[str, Unit] = {}
    states: set[Shape] = set()
    for res, cin, width, kernel, stride, act in itertools.product(
        ch.top["resolution"],
        ch.top["in_channels"],
        ch.stem["channels"],
        ch.stem["kernel"],
        ch.stem["stride"],
        ch.stem["activation"],
    ):
        unit = BlockUnit(_stem_block(cin, width, kernel, stride, act), (cin, res, res))
        found.setdefault(unit.key, unit)
        states.add(block_output_shape(unit.block, unit.in_shape))
    for i, branches in enumerate(ch.stages):
        nxt: set[Shape] = set()
        for op, fields in branches.items():
            names = [n for n in fields if n != "repeats"]
            repeats = max(fields["repeats"])
            for values in itertools.product(*(fields[n] for n in names)):
                kw = dict(zip(names, values, strict=True))
                try:
                    stage = Stage(op=op, **kw)
                except NasError as err:  # pragma: no cover - spaces are validated on load
                    raise err.at(prefix=f"stages[{i}]") from None
                for shape in sorted(states):
                    first = BlockUnit(stage.block(shape[0], first=True), shape)
                    found.setdefault(first.key, first)
                    out = block_output_shape(first.block, shape)
                    if repeats > 1:
                        rest = BlockUnit(stage.block(out[0], first=False), out)
                        found.setdefault(rest.key, rest)
                    nxt.add(out)
        states = nxt
    for shape, width, act, classes in itertools.product(
        sorted(states), ch.head["channels"], ch.head["activation"], ch.top["num_classes"]
    ):
        unit = HeadUnit(shape, width, classes, act)
        found.setdefault(unit.key, unit)
    return list(found.values())
