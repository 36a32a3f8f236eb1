"""Which weights a supernet stage must hold: its op families and their recipes.

For each op a stage offers, every combination of that op's choices (and every input
width the stage can receive) is turned into the builder's own recipe (``Op.module_kwargs``)
and grouped by family (``ElasticBlock.family``). A family holds one elastic block per
block position (elastic depth: a stage of ``k`` blocks runs the first ``k``); a
position is sized by the widest of the recipes it may have to run. The first position
takes the stage's input widths and stride; the others take the stage's own width and
stride 1, as ``Stage.block`` builds them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from nas.core.errors import NasError
from nas.model.ops import BlockSpec, get_op
from nas.supernet.blocks import ElasticBlock, Kwargs, elastic_block
from nas.supernet.spec import Choices, SupernetSpec

__all__ = ["Family", "cell_string", "stage_families"]


@dataclass(frozen=True)
class Family:
    """One op family of one stage: the module class its blocks build, the elastic
    block that mirrors it and, per block position, every recipe that position may run
    (non-empty)."""

    name: str
    module: type[nn.Module]
    block: type[ElasticBlock]
    positions: tuple[tuple[Kwargs, ...], ...]

    def create(self) -> list[ElasticBlock]:
        """One elastic block per position."""
        return [self.block(self.module, p) for p in self.positions]


def cell_string(ops: tuple[str, ...]) -> str:
    """The official NAS-Bench-201 arch string of 6 edge ops in edge order."""
    nodes = ((ops[0],), ops[1:3], ops[3:6])
    return "+".join("|" + "|".join(f"{o}~{i}" for i, o in enumerate(n)) + "|" for n in nodes)


def _cells(spec: SupernetSpec) -> tuple[str, ...]:
    """Cells in which every edge takes every op it offers at least once: a cell block
    needs to know which (edge, op) pairs hold weights, not every cell (5**6 of them)."""
    if not spec.cell:
        return ("",)
    base = [c[0] for c in spec.cell.values()]
    out = [cell_string(tuple(base))]
    for k, ch in enumerate(spec.cell.values()):
        out += [cell_string((*base[:k], op, *base[k + 1 :])) for op in ch[1:]]
    return tuple(out)


def _specs(
    op: str,
    fields: Mapping[str, Choices],
    cins: tuple[int, ...],
    first: bool,
    cells: tuple[str, ...],
) -> list[BlockSpec]:
    """Every valid block of ``op`` at one position (the first, or a later one)."""
    cells = cells if get_op(op).reads_cell else ("",)
    names = [n for n in fields if n != "repeats"]
    out = []
    for combo in itertools.product(*(fields[n] for n in names)):
        values: dict[str, Any] = dict(zip(names, combo, strict=True))
        cout = values.pop("out_channels")
        if not first:
            values["stride"] = 1
        for cin, cell in itertools.product(cins if first else (cout,), cells):
            b = BlockSpec(op=op, cin=cin, cout=cout, cell=cell, **values)
            try:
                get_op(op).validate(b)
            except NasError:  # e.g. a pool between unequal widths: no network has it
                continue
            out.append(b)
    return out


def stage_families(spec: SupernetSpec, i: int) -> tuple[Family, ...]:
    """The families of stage ``i``, in op order (an op's families in first-seen order)."""
    eps = spec.top["norm_eps"][0]  # a recipe's eps is read at run time, never stored
    families: list[Family] = []
    cells = _cells(spec)
    for op, fields in spec.stages[i].items():
        cls = get_op(op).module_class()
        block = elastic_block(cls, op=op, field=f"stages[{i}].op")
        depth = max(fields["repeats"])
        distinct = min(depth, 2)  # the positions after the first are alike
        slots: dict[str, list[dict[tuple[Any, ...], Kwargs]]] = {}
        for position in range(distinct):
            for b in _specs(op, fields, spec.widths(i), position == 0, cells):
                kwargs = get_op(op).module_kwargs(b, eps=eps, drop_path=0.0)
                found = slots.setdefault(block.family(b), [{} for _ in range(distinct)])
                found[position][tuple(sorted(kwargs.items()))] = kwargs
        for name, found in slots.items():
            positions = [tuple(p.values()) for p in found]
            positions += [positions[-1]] * (depth - distinct)
            # A position no valid block reaches ends the family (it cannot be deeper).
            kept = tuple(itertools.takewhile(bool, positions))
            if kept:
                families.append(Family(name, cls, block, kept))
    if not families:
        raise NasError("no valid block in any of its op choices", field=f"stages[{i}]")
    return tuple(families)
