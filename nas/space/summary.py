"""A space summarised: its searchable dimensions, every field's choices, its exact size.

All three read the same per-op branches the walker follows (the space's plan), so they
agree with what sampling can produce.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from nas.space.definition import SearchSpace
from nas.space.file import Choices
from nas.space.plan import Dimension
from nas.space.walker import all_fields

__all__ = ["SpaceChoices", "choices", "dimensions", "size"]


def dimensions(space: SearchSpace) -> list[Dimension]:
    """Every searchable label (2+ choices) with its choices and, if conditional, its ops."""
    return [d for d in all_fields(space.plan) if len(d.choices) > 1]


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
    plan = space.plan
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
    plan = space.plan
    n = math.prod(len(d.choices) for d in (*plan.top, *plan.cell, *plan.stem, *plan.head))
    for op_dim, branches in plan.stages:
        n *= sum(math.prod(len(d.choices) for d in branches[op]) for op in op_dim.choices)
    return n
