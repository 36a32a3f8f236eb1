"""The largest and the smallest architecture a supernet offers (the sandwich's bread).

Within one op, "largest" is BigNAS's: every elastic field at its maximum (widest,
deepest, biggest kernel and expansion, SE on) except stride at its minimum, since a
smaller stride keeps more pixels; "smallest" the reverse. Between ops there is no such
order, so each stage takes, in stage order, the op whose extreme gives the network the
most (fewest) MACs, by the analytic cost model. Non-numeric fields (activations) take
their first choice. A NAS-Bench-201 cell's edges take their heaviest (lightest) op:
3x3 conv, 1x1 conv, average pooling, skip, none in that order (so the smallest cell
is all none: it outputs zeros, as the benchmark's smallest cell does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.core.errors import NasError
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.cost import cost
from nas.supernet.plan import cell_string
from nas.supernet.spec import Choices, SupernetSpec

__all__ = ["largest", "smallest"]

_CELL_OPS = ("none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")


def largest(spec: SupernetSpec) -> Architecture:
    """The architecture with every dimension at its largest (see the module doc)."""
    return _extreme(spec, large=True)


def smallest(spec: SupernetSpec) -> Architecture:
    """The architecture with every dimension at its smallest."""
    return _extreme(spec, large=False)


def _pick(name: str, ch: Choices, large: bool) -> Any:
    if isinstance(ch[0], str):
        return ch[0]
    return (max if large != (name == "stride") else min)(ch)


def _fields(choices: Mapping[str, Choices], large: bool) -> dict[str, Any]:
    return {k: _pick(k, c, large) for k, c in choices.items()}


def _extreme(spec: SupernetSpec, *, large: bool) -> Architecture:
    top = _fields(spec.top, large)
    if spec.cell:
        pick = max if large else min
        top["cell"] = cell_string(tuple(pick(c, key=_CELL_OPS.index) for c in spec.cell.values()))
    stem, head = Stem(**_fields(spec.stem, large)), Head(**_fields(spec.head, large))
    stages = [
        Stage(op=op, **_fields(fields, large))
        for op, fields in (next(iter(ops.items())) for ops in spec.stages)
    ]
    best: Architecture | None = None
    for i, ops in enumerate(spec.stages):
        best, ranked = None, None
        for op, fields in ops.items():
            trial = [*stages[:i], Stage(op=op, **_fields(fields, large)), *stages[i + 1 :]]
            try:
                arch = Architecture(stem=stem, stages=tuple(trial), head=head, **top)
            except NasError:  # e.g. a pool between unequal widths
                continue
            c = cost(arch)
            rank = (c.macs, c.params) if large else (-c.macs, -c.params)
            if ranked is None or rank > ranked:
                best, ranked = arch, rank
        if best is None:
            raise NasError("no op choice gives a valid extreme architecture", field=f"stages[{i}]")
        stages = list(best.stages)
    assert best is not None
    return best
