"""The pieces a latency table measures separately: the stem, every block, the head.

A unit is an op configuration at a given input shape; its ``key`` (in the style of
Once-for-All's table, ``op-in:CxHxW-out:CxHxW-kernel-stride-expansion-...``) is what
the table stores. ``units_of(arch)`` splits one network into units; ``space_units``
lists every unit any architecture of a space can contain.

A block of a cell op (``nb201``) is a unit of its *pruned* cell (``nas.bench.nb201.prune``:
dead edges set to none): the cell module computes exactly its pruned cell, so cells
that differ only in dead edges are one unit, ``-cell<op index per edge>`` in its key.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

import torch
from torch import nn

from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.model.arch import Architecture, Stage
from nas.model.cost import Shape, block_output_shape, head_layers, layer_params
from nas.model.ops import BlockSpec, get_op
from nas.model.ops.layers import Head
from nas.space.searchspace import Choices, SearchSpace, choices

__all__ = ["BlockUnit", "HeadUnit", "Unit", "cheapest", "space_units", "units_of"]


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
    if b.cell:  # only cell ops have one: the keys of all other blocks are unchanged
        key += "-cell" + _digits(b.cell)
    return key, out


@functools.cache  # at most 5**6 cells
def _digits(cell: str) -> str:
    return "".join(str(nb201_cell.OPS.index(op)) for op in nb201_cell.parse(cell))


@functools.cache
def _pruned_cell(cell: str) -> str:
    return nb201_cell.format_cell(nb201_cell.prune(nb201_cell.parse(cell)))


def _pruned(b: BlockSpec) -> BlockSpec:
    """The block of the unit that measures ``b``: its cell pruned (same computation)."""
    return replace(b, cell=_pruned_cell(b.cell)) if b.cell else b


def _cells(edges: Mapping[str, Choices]) -> list[str]:
    """The distinct pruned cells of a space's cell choices, in first-seen order."""
    found: dict[tuple[str, ...], None] = {}
    for ops in itertools.product(*(edges[name] for name in nb201_cell.PARAM_NAMES)):
        found.setdefault(nb201_cell.prune(ops), None)
    return [nb201_cell.format_cell(ops) for ops in found]


def _taps(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Kernel taps along one axis that meet the input at some output position (the
    others only ever meet padding)."""
    outputs = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return sum(
        any(0 <= o * stride - padding + i * dilation < size for o in range(outputs))
        for i in range(kernel)
    )


@functools.lru_cache(maxsize=1 << 16)
def _weights_read(unit: Unit) -> int:
    """Bytes of weights (and buffers) one forward pass of ``unit`` reads: a convolution's
    taps that only ever meet padding are not read (a 7x7 kernel on a 2x2 input reads 3x3
    of its 7x7 taps; onnxruntime skips them), everything else is. Memoised: a network's
    units repeat across predictions."""
    module = unit.module()
    skipped = 0

    def hook(conv: nn.Conv2d, inputs: tuple[torch.Tensor, ...], _: object) -> None:
        nonlocal skipped
        h, w = inputs[0].shape[-2:]
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
        ph, pw = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
        read = _taps(h, kh, sh, ph, dh) * _taps(w, kw, sw, pw, dw) / (kh * kw)
        skipped += round(conv.weight.numel() * conv.weight.element_size() * (1 - read))

    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    handles = [c.register_forward_hook(hook) for c in convs]
    try:
        with torch.inference_mode():
            module.eval()(torch.zeros(1, *unit.in_shape))
    finally:
        for handle in handles:
            handle.remove()
    tensors = (*module.parameters(), *module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) - skipped


@dataclass(frozen=True)
class BlockUnit:
    """One block (the stem is a ``conv`` block) applied to an input of ``in_shape``; a
    cell block's cell is pruned (``units_of`` and ``space_units`` make them so)."""

    block: BlockSpec
    in_shape: Shape

    @property
    def key(self) -> str:
        return _block_key(self.block, self.in_shape)[0]

    @property
    def out_shape(self) -> Shape:
        return _block_key(self.block, self.in_shape)[1]

    @property
    def io_elements(self) -> int:
        """Elements of one sample's input and output (what a lone unit is fed and gives
        back, and a unit inside a network is not)."""
        return math.prod(self.in_shape) + math.prod(self.out_shape)

    @property
    def weights_read(self) -> int:
        """Bytes of weights one pass reads (a network's weights stream from memory)."""
        return _weights_read(self)

    @property
    def params(self) -> int:
        """Trainable parameters, counted from the description (nas.model.cost): what
        a question over a whole space can afford, where ``weights_read`` builds the unit."""
        return sum(layer_params(layer) for layer in get_op(self.block.op).layers(self.block))

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

    @property
    def io_elements(self) -> int:
        """Elements of one sample's input and output (the logits)."""
        return math.prod(self.in_shape) + self.num_classes

    @property
    def weights_read(self) -> int:
        """Bytes of weights one pass reads."""
        return _weights_read(self)

    @property
    def params(self) -> int:
        """Trainable parameters, counted from the description (nas.model.cost)."""
        convs, classifier = head_layers(self.in_shape[0], self.channels, self.num_classes)
        return sum(layer_params(layer) for layer in (*convs, classifier))

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
        unit = BlockUnit(_pruned(block), shape)
        units.append(unit)
        shape = unit.out_shape
    units.append(HeadUnit(shape, arch.head.channels, arch.num_classes, arch.head.activation))
    return units


@dataclass(frozen=True)
class _Step:
    """One way through a stage: from input ``state``, its first block, the block its
    repeats use (``rest``), and the state it leaves. The stem has no input state, the
    head no output."""

    stage: int  # -1: stem; len(stages): head
    state: Shape | None
    first: Unit
    rest: Unit | None
    repeats: tuple[int, ...]
    out: Shape | None


def _steps(space: SearchSpace) -> Iterator[_Step]:
    """Every step reachable in ``space``, stage by stage (the reachable (channels, size)
    states are followed, so only shapes some architecture really produces appear)."""
    ch = choices(space)
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
        yield _Step(-1, None, unit, None, (1,), unit.out_shape)
        states.add(unit.out_shape)
    cells = _cells(ch.cell) if ch.cell else [""]
    for i, branches in enumerate(ch.stages):
        nxt: set[Shape] = set()
        for op, fields in branches.items():
            names = [n for n in fields if n != "repeats"]
            for values in itertools.product(*(fields[n] for n in names)):
                kw = dict(zip(names, values, strict=True))
                try:
                    stage = Stage(op=op, **kw)
                except NasError as err:  # pragma: no cover - spaces are validated on load
                    raise err.at(prefix=f"stages[{i}]") from None
                for cell, shape in itertools.product(
                    cells if get_op(op).reads_cell else [""], sorted(states)
                ):
                    first = BlockUnit(stage.block(shape[0], first=True, cell=cell), shape)
                    out = first.out_shape
                    rest = BlockUnit(stage.block(out[0], first=False, cell=cell), out)
                    yield _Step(i, shape, first, rest, tuple(fields["repeats"]), out)
                    nxt.add(out)
        states = nxt
    for shape, width, act, classes in itertools.product(
        sorted(states), ch.head["channels"], ch.head["activation"], ch.top["num_classes"]
    ):
        yield _Step(len(ch.stages), shape, HeadUnit(shape, width, classes, act), None, (1,), None)


def space_units(space: SearchSpace) -> list[Unit]:
    """Every unit reachable in ``space`` (each once), in a stable order."""
    found: dict[str, Unit] = {}
    for step in _steps(space):
        found.setdefault(step.first.key, step.first)
        if step.rest is not None and max(step.repeats) > 1:
            found.setdefault(step.rest.key, step.rest)
    return list(found.values())


def cheapest(space: SearchSpace, weight: Callable[[Unit], float]) -> float:
    """The smallest total ``weight`` over the units of any architecture of ``space``:
    a shortest path through the stage states, exact (no sampling)."""
    best: dict[Shape | None, float] = {None: 0.0}
    current = -1
    layer: dict[Shape | None, float] = {}
    for step in _steps(space):
        if step.stage != current:
            best, layer, current = (layer or best), {}, step.stage
        if step.state not in best:
            continue
        cost = best[step.state] + weight(step.first)
        if step.rest is not None:
            cost += min((r - 1) * weight(step.rest) if r > 1 else 0.0 for r in step.repeats)
        if step.out is None:
            layer[None] = min(layer.get(None, float("inf")), cost)
        else:
            layer[step.out] = min(layer.get(step.out, float("inf")), cost)
    return layer[None]
