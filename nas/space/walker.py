"""THE conditional traversal of a space, and what reads the same per-op branches.

``traverse`` visits only the fields the chosen op of each stage reads, so one network is
one genotype (one ``id``); decoding, encoding and sampling (``nas.space.codec``) all go
through it. ``dimensions``, ``choices`` and ``size`` read the branches it follows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.model import nb201_cell
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.space.file import STAGE_FIELDS, Choices
from nas.space.plan import Dimension

if TYPE_CHECKING:
    from nas.space.searchspace import SearchSpace

__all__ = [
    "SpaceChoices",
    "Values",
    "all_fields",
    "assemble",
    "choices",
    "dimensions",
    "match",
    "size",
    "traverse",
]

Values = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, Any]]


def traverse(space: SearchSpace, visit: Callable[[Dimension], Any]) -> Values:
    """THE conditional traversal: ``visit`` returns each field's value (constants too).

    Only the fields the chosen op of each stage reads are visited; the rest keep the
    genotype's defaults. ``visit`` must return one of ``dim.choices``. The cell's edges
    come right after the top-level fields and become ``top["cell"]`` (an arch string).
    """
    plan = space._plan
    top = {d.attr: visit(d) for d in plan.top}
    if plan.cell:
        top["cell"] = nb201_cell.format_cell([visit(d) for d in plan.cell])
    stem = {d.attr: visit(d) for d in plan.stem}
    stages = []
    for op_dim, branches in plan.stages:
        op = visit(op_dim)
        stages.append({"op": op, **{d.attr: visit(d) for d in branches[op]}})
    head = {d.attr: visit(d) for d in plan.head}
    return top, stem, stages, head


def assemble(values: Values) -> Architecture:
    top, stem, stages, head = values
    return Architecture(
        stem=Stem(**stem),
        stages=tuple(Stage(**s) for s in stages),
        head=Head(**head),
        **top,
    )


def match(value: Any, choices: Choices) -> Any:
    """The choice equal to ``value`` (so 0 finds 0.0), never matching bools to numbers."""
    for choice in choices:
        if isinstance(value, bool) or isinstance(value, str) != isinstance(choice, str):
            continue
        if value == choice:
            return choice
    raise KeyError(value)


def all_fields(space: SearchSpace) -> Iterator[Dimension]:
    """Every field of every branch, constants included, each label once, in label order."""
    plan = space._plan
    yield from plan.top
    yield from plan.cell
    yield from plan.stem
    order = {name: k for k, name in enumerate(STAGE_FIELDS)}
    for op_dim, branches in plan.stages:
        yield op_dim
        found: dict[str, Dimension] = {}
        for op in op_dim.choices:
            for d in branches[op]:
                found.setdefault(d.label, d)
        # Genotype field order; a field's per-op overrides follow its shared label.
        yield from sorted(found.values(), key=lambda d: order[d.attr])
    yield from plan.head


def dimensions(space: SearchSpace) -> list[Dimension]:
    """Every searchable label (2+ choices) with its choices and, if conditional, its ops."""
    return [d for d in all_fields(space) if len(d.choices) > 1]


@dataclass(frozen=True)
class SpaceChoices:
    """Every field's choices, grouped as the walker sees them (constants included).

    For tools that reason over the whole space at once, such as enumerating every op
    configuration a latency table needs: ``stages[i][op][field]`` are the choices of
    ``field`` in stage ``i`` when its op is ``op``.
    """

    top: Mapping[str, Choices]
    stem: Mapping[str, Choices]
    head: Mapping[str, Choices]
    stages: tuple[Mapping[str, Mapping[str, Choices]], ...]
    #: The cell's edges (``nb201_cell.PARAM_NAMES`` labels, edge order); empty without a cell.
    cell: Mapping[str, Choices] = field(default_factory=dict)


def choices(space: SearchSpace) -> SpaceChoices:
    plan = space._plan
    return SpaceChoices(
        top={d.attr: d.choices for d in plan.top},
        cell={d.attr: d.choices for d in plan.cell},
        stem={d.attr: d.choices for d in plan.stem},
        head={d.attr: d.choices for d in plan.head},
        stages=tuple(
            {op: {d.attr: d.choices for d in branches[op]} for op in op_dim.choices}
            for op_dim, branches in plan.stages
        ),
    )


def size(space: SearchSpace) -> int:
    """The exact number of distinct architectures: the product of the global choice
    counts (the cell's edges included) times, per stage, the sum over ops of the product
    of that op's choice counts. Cells are counted as distinct genotypes, as NAS-Bench-201
    counts them, even when ``nb201_cell.canonical`` says two compute the same network."""
    plan = space._plan
    n = math.prod(len(d.choices) for d in (*plan.top, *plan.cell, *plan.stem, *plan.head))
    for op_dim, branches in plan.stages:
        n *= sum(math.prod(len(d.choices) for d in branches[op]) for op in op_dim.choices)
    return n
