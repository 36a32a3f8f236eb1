"""THE conditional traversal of a space's plan.

``traverse`` visits only the fields the chosen op of each stage reads, so one network is
one genotype (one ``id``); decoding, encoding and sampling (``nas.space.codec``) and the
load-time checks (``nas.space.check``) all go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from nas.model import nb201_cell
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.space.file import STAGE_FIELDS, Choices
from nas.space.plan import Dimension, Plan

__all__ = ["Values", "all_fields", "assemble", "match", "traverse"]

Values = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, Any]]


def traverse(plan: Plan, visit: Callable[[Dimension], Any]) -> Values:
    """THE conditional traversal: ``visit`` returns each field's value (constants too).

    Only the fields the chosen op of each stage reads are visited; the rest keep the
    genotype's defaults. ``visit`` must return one of ``dim.choices``. The cell's edges
    come right after the top-level fields and become ``top["cell"]`` (an arch string).
    """
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


def all_fields(plan: Plan) -> Iterator[Dimension]:
    """Every field of every branch, constants included, each label once, in label order."""
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
