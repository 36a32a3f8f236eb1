"""Load-time validation of a space: every choice the walker can take is a valid genotype.

Each choice of every field an op reads is checked by the genotype itself (``Stage``,
``Stem``, ``Head``, ``Architecture`` and ``Op.validate``), including channel flow
against every width the previous stage can produce, so every params dict the walker can
produce decodes and ``size`` is exact. Errors name the file's fields.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Any

from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.model.arch import Head, Stage, Stem
from nas.model.ops import OPS, get_op
from nas.space.file import Fields, StageSpace
from nas.space.plan import Dimension, Plan
from nas.space.walker import assemble, traverse

__all__ = ["check"]

#: Beyond this many (combination x input width) checks per stage and op, load-time
#: validation checks each choice on its own instead of every combination.
_MAX_CHECKS = 200_000


def check(plan: Plan, *, cell: Fields, stem: Fields, stages: tuple[StageSpace, ...]) -> None:
    """Every choice the walker can take gives a valid genotype (errors name file fields)."""
    check_cell(cell, stages)
    for part, cls, dims in (("stem", Stem, plan.stem), ("head", Head, plan.head)):
        for combo in itertools.product(*(d.choices for d in dims)):
            try:
                cls(**{d.attr: v for d, v in zip(dims, combo, strict=True)})
            except NasError as err:
                raise err.at(prefix=part) from None
    cins = {c: "stem.channels" for c in dict(stem)["channels"]}
    for i, (op_dim, branches) in enumerate(plan.stages):
        outs: dict[int, str] = {}
        for o in op_dim.choices:
            _check_stage(i, o, branches[o], cins)
            for d in branches[o]:
                if d.attr == "out_channels":
                    outs.update({c: f"stages[{i}].out_channels" for c in d.choices})
        cins = outs
    # Architecture-level fields: through Architecture's own checks, one choice at a time.
    base = assemble(traverse(plan, lambda d: d.choices[0]))
    for d in plan.top:
        for value in d.choices[1:]:
            base.replace(**{d.attr: value})


def check_cell(cell: Fields, stages: tuple[StageSpace, ...]) -> None:
    """A ``[cell]`` table exactly when a stage always has a cell op (so the cell is always
    active: no conditional cell, one genotype per network)."""
    names = [nb201_cell.PARAM_NAMES.index(k) for k, _ in cell]
    if cell and names != list(range(len(nb201_cell.PARAM_NAMES))):
        raise NasError(f"expected the edges {', '.join(nb201_cell.PARAM_NAMES)}", field="cell")
    users = [i for i, st in enumerate(stages) if any(OPS[o].reads_cell for o in st.op)]
    always = [i for i, st in enumerate(stages) if all(OPS[o].reads_cell for o in st.op)]
    if cell and not always:
        partly = f" (stages[{users[0]}] only sometimes)" if users else ""
        raise NasError(
            "unused: no stage has a cell op (such as nb201) as every op choice" + partly,
            field="cell",
        )
    if users and not cell:
        i = users[0]
        ops = [o for o in stages[i].op if OPS[o].reads_cell]
        raise NasError(
            f"stages[{i}] can use op {ops[0]!r}, which needs a NAS-Bench-201 cell: add a "
            f"[cell] table with the ops of each edge ({', '.join(nb201_cell.PARAM_NAMES)})",
            field="cell",
        )


def _variations(dims: tuple[Dimension, ...]) -> Iterator[tuple[Any, ...]]:
    """Each choice of each field with the others at their first choice."""
    base = [d.choices[0] for d in dims]
    yield tuple(base)
    for k, d in enumerate(dims):
        for value in d.choices[1:]:
            yield (*base[:k], value, *base[k + 1 :])


def _check_stage(i: int, o: str, dims: tuple[Dimension, ...], cins: Mapping[int, str]) -> None:
    op = get_op(o)
    by_attr = {d.attr: d for d in dims}

    def fail(err: NasError, extra: str = "") -> NasError:
        d = by_attr.get(err.field)
        if d is not None and d.label == f"s{i}_{o}_{d.attr}":
            where = f"stages[{i}].{o}.{d.attr}"
        else:
            where = f"stages[{i}]" + (f".{err.field}" if err.field else "")
        return NasError(err.reason + extra, field=where)

    n = math.prod(len(d.choices) for d in dims) * len(cins)
    combos = (
        itertools.product(*(d.choices for d in dims)) if n <= _MAX_CHECKS else _variations(dims)
    )
    names = [d.attr for d in dims]
    for combo in combos:
        try:
            stage = Stage(op=o, **dict(zip(names, combo, strict=True)))
        except NasError as err:
            raise fail(err) from None
        for cin, origin in cins.items():
            try:
                op.validate(stage.block(cin, first=True))
            except NasError as err:
                raise fail(err, f" (input width {cin} from {origin})") from None
