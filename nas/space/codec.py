"""Params <-> architectures: ``walk``, ``decode`` and its inverse ``encode``, sampling.

``decode`` is the single path from a flat ``{label: value}`` dict to an Architecture;
``walk`` collects such a dict by asking a chooser for each active dimension, so
``sample`` (Optuna) and ``sample_random`` (numpy) are ``walk`` followed by ``decode``.
All of them go through the one walker (``nas.space.walker.traverse``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.model.arch import Architecture
from nas.space.definition import SearchSpace
from nas.space.file import fmt_choices
from nas.space.plan import Dimension
from nas.space.walker import all_fields, assemble, match, traverse

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Trial", "contains", "decode", "encode", "sample", "sample_random", "walk"]


class Trial(Protocol):
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


def walk(space: SearchSpace, choose: Callable[[Dimension], Any]) -> dict[str, Any]:
    """Params for one architecture: ``choose(dim)`` is asked once per active dimension.

    Fixed fields are not asked. The result decodes (``decode``) to the architecture.
    """
    params: dict[str, Any] = {}

    def visit(d: Dimension) -> Any:
        if len(d.choices) == 1:
            return d.choices[0]
        value = choose(d)
        try:
            params[d.label] = match(value, d.choices)
        except KeyError:
            raise NasError(
                f"chose {value!r}, not one of its choices ({fmt_choices(d.choices)})", field=d.label
            ) from None
        return params[d.label]

    traverse(space.plan, visit)
    return params


def decode(space: SearchSpace, params: Mapping[str, object]) -> Architecture:
    """The one path from flat params to an Architecture.

    Strict: a missing, unknown, fixed, inactive or out-of-choice parameter is a NasError
    naming its label. The result's ``name`` is left empty (``id`` ignores it anyway).
    """
    used: set[str] = set()

    def visit(d: Dimension) -> Any:
        if len(d.choices) == 1:
            return d.choices[0]
        if d.label not in params:
            raise NasError(
                f"missing parameter of space {space.name!r} (choices: {fmt_choices(d.choices)})",
                field=d.label,
            )
        used.add(d.label)
        value = params[d.label]
        try:
            return match(value, d.choices)
        except KeyError:
            raise NasError(
                f"{value!r} is not a choice of space {space.name!r} (choices: {fmt_choices(d.choices)})",
                field=d.label,
            ) from None

    values = traverse(space.plan, visit)
    for key in params:
        if key not in used:
            raise NasError(_unused_reason(space, key, params), field=str(key))
    return assemble(values)


def _unused_reason(space: SearchSpace, key: object, params: Mapping[str, object]) -> str:
    for d in all_fields(space.plan):
        if d.label != key:
            continue
        if len(d.choices) == 1:
            return f"not a parameter: fixed to {fmt_choices(d.choices)} in space {space.name!r}"
        return (
            f"inactive: it applies only when s{d.stage}_op is one of ({fmt_choices(d.ops or ())}), "
            f"got {params.get(f's{d.stage}_op')!r}"
        )
    return f"unknown parameter for space {space.name!r}"


def sample(space: SearchSpace, trial: Trial) -> Architecture:
    """One architecture from an Optuna trial: only ``trial.suggest_categorical`` is called,
    once per active dimension, under its deterministic label."""
    return decode(space, walk(space, lambda d: trial.suggest_categorical(d.label, d.choices)))


def sample_random(space: SearchSpace, rng: np.random.Generator | int | None = None) -> Architecture:
    """One architecture drawn uniformly per active dimension (``rng``: Generator or seed)."""
    import numpy as np

    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return decode(space, walk(space, lambda d: d.choices[int(gen.integers(len(d.choices)))]))


def _read(arch: Architecture, d: Dimension) -> Any:
    if d.field.startswith("cell."):
        return arch.cell_ops[nb201_cell.PARAM_NAMES.index(d.attr)]
    if d.stage is not None:
        return getattr(arch.stages[d.stage], d.attr)
    part, _, _ = d.field.rpartition(".")
    return getattr(getattr(arch, part) if part else arch, d.attr)


def encode(space: SearchSpace, arch: Architecture) -> dict[str, Any]:
    """Inverse of ``decode``: the params of ``arch``, or a NasError naming the first
    genotype field whose value is outside the space (``name`` is ignored)."""
    if len(arch.stages) != len(space.stages):
        raise NasError(
            f"space {space.name!r} has {len(space.stages)} stages, "
            f"the architecture has {len(arch.stages)}",
            field="stages",
        )
    if bool(space.cell) != bool(arch.cell):
        has = "has" if space.cell else "has no"
        raise NasError(
            f"space {space.name!r} {has} a cell, the architecture "
            f"{'has' if arch.cell else 'has none'}",
            field="cell",
        )
    params: dict[str, Any] = {}

    def visit(d: Dimension) -> Any:
        value = _read(arch, d)
        try:
            choice = match(value, d.choices)
        except KeyError:
            raise NasError(
                f"{value!r} is outside space {space.name!r} (choices: {fmt_choices(d.choices)})",
                field=d.field,
            ) from None
        if len(d.choices) > 1:
            params[d.label] = choice
        return choice

    traverse(space.plan, visit)
    return params


def contains(space: SearchSpace, arch: Architecture) -> bool:
    """Whether ``arch`` is one of the space's architectures."""
    try:
        encode(space, arch)
    except NasError:
        return False
    return True
