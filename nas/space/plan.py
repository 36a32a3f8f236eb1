"""A space's plan: every genotype field as a ``Dimension``, per stage and per op.

Derived once per space when it is loaded; the walker follows it, and deterministic labels
(``s2_kernel``, ``s2_dil_dilation``) come from here, so a label always has the same
choices in every trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass

from nas.core.errors import NasError
from nas.model.ops import get_op
from nas.space.file import STAGE_FIELDS, Choices, Fields, StageSpace, reads_field

__all__ = ["Dimension", "Plan", "make_plan"]


@dataclass(frozen=True)
class Dimension:
    """One searchable choice: its label, its choices and where it lands in the genotype.

    ``ops`` is None when the dimension is active whatever the stage's op is, else the
    ops of ``stages[stage]`` under which it is active (conditional parameter).
    """

    label: str
    choices: Choices
    #: Where the value goes: ``resolution``, ``stem.channels``, ``stages[2].kernel``.
    field: str
    stage: int | None = None
    ops: tuple[str, ...] | None = None

    @property
    def attr(self) -> str:
        """The genotype attribute name (last component of ``field``)."""
        return self.field.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Plan:
    """The walker's map, derived once per space: every field as a Dimension, per op."""

    top: tuple[Dimension, ...]
    #: The cell's edges in ``nb201_cell.EDGES`` order (() without a ``[cell]`` table).
    cell: tuple[Dimension, ...]
    stem: tuple[Dimension, ...]
    head: tuple[Dimension, ...]
    #: Per stage: the op dimension and, per op, the dimensions that op reads.
    stages: tuple[tuple[Dimension, Mapping[str, tuple[Dimension, ...]]], ...]


def make_plan(
    top: Fields, cell: Fields, stem: Fields, head: Fields, stages: tuple[StageSpace, ...]
) -> Plan:
    """Every field of a space's parts as a Dimension under its deterministic label."""
    return Plan(
        tuple(Dimension(k, c, k) for k, c in top),
        tuple(Dimension(k, c, f"cell.{k}") for k, c in cell),
        tuple(Dimension(f"stem_{k}", c, f"stem.{k}") for k, c in stem),
        tuple(Dimension(f"head_{k}", c, f"head.{k}") for k, c in head),
        tuple(_stage_dims(i, st) for i, st in enumerate(stages)),
    )


def _stage_dims(i: int, st: StageSpace) -> tuple[Dimension, Mapping[str, tuple[Dimension, ...]]]:
    """Stage ``i``'s op dimension and, per op, the dimensions that op reads."""
    level = dict(st.fields)
    over = {o: dict(t) for o, t in st.overrides}
    reads: dict[str, list[tuple[str, Choices, str]]] = {}
    users: dict[str, list[str]] = {}
    for o in st.op:
        op = get_op(o, field=f"stages[{i}].op")
        entries = []
        for name, (_, default) in STAGE_FIELDS.items():
            if not reads_field(op, name):
                continue
            if name in over.get(o, {}):
                label, choices = f"s{i}_{o}_{name}", over[o][name]
            elif name in level:
                label, choices = f"s{i}_{name}", level[name]
            elif default is not MISSING:
                label, choices = f"s{i}_{name}", (default,)
            else:
                raise NasError("missing required key", field=f"stages[{i}].{name}")
            entries.append((label, choices, name))
            users.setdefault(label, []).append(o)
        reads[o] = entries
    dims: dict[str, Dimension] = {}
    for entries in reads.values():
        for label, choices, name in entries:
            ops = None if len(users[label]) == len(st.op) else tuple(users[label])
            dims.setdefault(label, Dimension(label, choices, f"stages[{i}].{name}", i, ops))
    branches = {o: tuple(dims[e[0]] for e in entries) for o, entries in reads.items()}
    return Dimension(f"s{i}_op", st.op, f"stages[{i}].op", i), branches
