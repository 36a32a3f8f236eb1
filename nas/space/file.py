"""The search-space file format: TOML tables read into canonical, type-checked tuples.

Strict by design (a typo in a space file must not silently search something else):
unknown keys, wrong types, empty or duplicate choices, a field no op of the stage reads,
a per-op table for an op the stage does not have are each one NasError naming the field.
The searchable fields are derived from the genotype classes (``nas.model.arch``), so a field
added there becomes searchable here. ``nas.space.searchspace`` turns the result into a SearchSpace.
"""

from __future__ import annotations

import numbers
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.ops import OPS, OPTIONAL_FIELDS, Op, get_op

__all__ = [
    "STAGE_FIELDS",
    "TOP_FIELDS",
    "Choices",
    "Fields",
    "StageSpace",
    "fmt_choices",
    "parse_choices",
    "parse_space",
    "plain_int",
    "reads_field",
]

#: The choices of one field, in file order (a fixed value is a 1-tuple).
Choices = tuple[Any, ...]
#: Field name -> choices, in genotype field order.
Fields = tuple[tuple[str, Choices], ...]

_KIND = {int: "an integer", float: "a number", str: "a string"}


def _spec(cls: type, exclude: Iterable[str] = ()) -> dict[str, tuple[type, Any]]:
    """Scalar fields of a genotype class as name -> (type, default or MISSING)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[type, Any]] = {}
    for f in fields(cls):
        if f.name in exclude or hints[f.name] not in _KIND:
            continue
        out[f.name] = (hints[f.name], f.default)
    return out


# Derived from the genotype, so a field added there becomes searchable here.
TOP_FIELDS = _spec(Architecture, exclude=("name", "cell"))
_STEM = _spec(Stem)
_HEAD = _spec(Head)
STAGE_FIELDS = _spec(Stage, exclude=("op",))
_META = ("name", "description", "stem", "head", "stages", "cell")


def reads_field(op: Op, name: str) -> bool:
    """Whether ``op`` reads stage field ``name`` (out_channels, repeats, stride: always)."""
    return name not in OPTIONAL_FIELDS or name in op.fields


def fmt_choices(choices: Iterable[Any]) -> str:
    """Choices as an error message lists them: strings quoted, numbers plain."""
    return ", ".join(repr(c) if isinstance(c, str) else f"{c:g}" for c in choices)


@dataclass(frozen=True)
class StageSpace:
    """One stage's choices: its ops, stage-level fields, and per-op override tables.

    ``fields`` holds the stage-level choices of every field some op reads without an
    override; ``overrides`` maps an op to the fields it takes from its own table.
    """

    op: Choices
    fields: Fields
    overrides: tuple[tuple[str, Fields], ...] = ()


def _typed(value: Any, hint: type, where: str) -> Any:
    ok = (
        isinstance(value, str)
        if hint is str
        else not isinstance(value, bool)
        and isinstance(value, int | float if hint is float else int)
    )
    if not ok:
        raise NasError(f"expected {_KIND[hint]} or a list of them, got {value!r}", field=where)
    return float(value) if hint is float else value


def plain_int(value: Any) -> Any:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def parse_choices(raw: Any, hint: type, where: str) -> Choices:
    """A fixed value or a list of choices, type-checked, canonical, without duplicates."""
    if isinstance(raw, Mapping):
        raise NasError("expected a value or a list of choices, got a table", field=where)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise NasError("empty list of choices", field=where)
    out: list[Any] = []
    for item in items:
        value = _typed(item, hint, where)
        if value in out:
            raise NasError(f"duplicate choice {item!r}", field=where)
        out.append(value)
    return tuple(out)


def _section(data: Any, spec: Mapping[str, tuple[type, Any]], where: str) -> Fields:
    """A table of genotype fields (stem, head, or the top level's scalar keys)."""
    if not isinstance(data, Mapping):
        raise NasError("expected a table", field=where)
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in spec:
            raise NasError(f"unknown key (known: {', '.join(spec)})", field=f"{prefix}{key}")
    out = []
    for name, (hint, default) in spec.items():
        if name in data:
            out.append((name, parse_choices(data[name], hint, f"{prefix}{name}")))
        elif default is MISSING:
            raise NasError("missing required key", field=f"{prefix}{name}")
        else:
            out.append((name, (default,)))
    return tuple(out)


def parse_space(data: Mapping[str, Any], default_name: str) -> dict[str, Any]:
    known = (*_META, *TOP_FIELDS)
    for key in data:
        if key not in known:
            raise NasError(f"unknown key (known: {', '.join(known)})", field=str(key))
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise NasError(f"expected a non-empty string, got {name!r}", field="name")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise NasError(f"expected a string, got {description!r}", field="description")
    if "stem" not in data:
        raise NasError("missing required table [stem]", field="stem")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise NasError("expected a non-empty list of [[stages]] tables", field="stages")
    return dict(
        name=name,
        description=description,
        top=_section({k: v for k, v in data.items() if k in TOP_FIELDS}, TOP_FIELDS, ""),
        cell=_parse_cell(data["cell"]) if "cell" in data else (),
        stem=_section(data["stem"], _STEM, "stem"),
        head=_section(data.get("head", {}), _HEAD, "head"),
        stages=tuple(_parse_stage(s, i) for i, s in enumerate(stages)),
    )


def _parse_cell(data: Any) -> Fields:
    """``[cell]``: every edge of ``nb201_cell.PARAM_NAMES``, each an op or a list of ops."""
    if not isinstance(data, Mapping):
        raise NasError("expected a table of edges (edge_1_0 = [...], ...)", field="cell")
    for key in data:
        if key not in nb201_cell.PARAM_NAMES:
            raise NasError(
                f"unknown edge (known: {', '.join(nb201_cell.PARAM_NAMES)})", field=f"cell.{key}"
            )
    out = []
    for name in nb201_cell.PARAM_NAMES:
        if name not in data:
            raise NasError(
                f"missing edge: give its op or a list of ops ({fmt_choices(nb201_cell.OPS)})",
                field=f"cell.{name}",
            )
        ops = parse_choices(data[name], str, f"cell.{name}")
        for op in ops:
            if op not in nb201_cell.OPS:
                raise NasError(
                    f"unknown cell op {op!r} (known: {fmt_choices(nb201_cell.OPS)})",
                    field=f"cell.{name}",
                )
        out.append((name, ops))
    return tuple(out)


def _parse_stage(data: Any, i: int) -> StageSpace:
    where = f"stages[{i}]"
    if not isinstance(data, Mapping):
        raise NasError("expected a table", field=where)
    if "op" not in data:
        raise NasError("missing required key", field=f"{where}.op")
    ops = parse_choices(data["op"], str, f"{where}.op")
    for op in ops:
        get_op(op, field=f"{where}.op")
    level: dict[str, Choices] = {}
    overrides: dict[str, dict[str, Choices]] = {}
    for key, value in data.items():
        at = f"{where}.{key}"
        if key == "op":
            continue
        if key in STAGE_FIELDS:
            level[key] = parse_choices(value, STAGE_FIELDS[key][0], at)
        elif isinstance(value, Mapping):
            if key not in OPS:
                raise NasError(
                    f"unknown op {key!r} for a per-op table (known: {', '.join(sorted(OPS))})",
                    field=at,
                )
            if key not in ops:
                raise NasError(
                    f"per-op table for {key!r}, which is not one of this stage's ops ({fmt_choices(ops)})",
                    field=at,
                )
            overrides[key] = _parse_override(OPS[key], value, at)
        else:
            raise NasError(
                f"unknown key (known: op, {', '.join(STAGE_FIELDS)}, or a per-op table [stages.<op>])",
                field=at,
            )
    out: list[tuple[str, Choices]] = []
    for name, (_, default) in STAGE_FIELDS.items():
        users = [o for o in ops if reads_field(OPS[o], name) and name not in overrides.get(o, {})]
        if name in level:
            if not users:
                why = (
                    "every op that reads it overrides it"
                    if any(reads_field(OPS[o], name) for o in ops)
                    else f"no op of this stage ({fmt_choices(ops)}) reads it"
                )
                raise NasError(f"unused: {why}", field=f"{where}.{name}")
            out.append((name, level[name]))
        elif users:
            if default is MISSING:
                raise NasError("missing required key", field=f"{where}.{name}")
            out.append((name, (default,)))
    table = tuple(
        (o, tuple((k, overrides[o][k]) for k in STAGE_FIELDS if k in overrides[o]))
        for o in ops
        if o in overrides
    )
    return StageSpace(op=ops, fields=tuple(out), overrides=table)


def _parse_override(op: Op, data: Mapping[str, Any], where: str) -> dict[str, Choices]:
    out: dict[str, Choices] = {}
    for key, value in data.items():
        at = f"{where}.{key}"
        if key not in STAGE_FIELDS:
            raise NasError(f"unknown key (per-op tables take: {', '.join(STAGE_FIELDS)})", field=at)
        if not reads_field(op, key):
            raise NasError(f"op {op.name!r} does not read {key}", field=at)
        out[key] = parse_choices(value, STAGE_FIELDS[key][0], at)
    return out
