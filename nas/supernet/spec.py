"""What a supernet covers: every field's choices, read from a search space.

A field with several choices is elastic; one with a single choice is fixed. Nothing
needs declaring in the space file: the supernet holds the widest weights any choice
needs and slices them, so an elastic field and a fixed one differ only in how many
slices are ever taken. Only the data fields (``in_channels``, ``num_classes``) must be
fixed: a weight over other data is not a slice of this one.

A NAS-Bench-201 cell (``Architecture.cell``) is covered edge by edge: ``cell`` holds
each edge's op choices, in edge order (the order of the cell string).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.core.errors import NasError
from nas.space.searchspace import choices

if TYPE_CHECKING:
    from nas.model.arch import Architecture
    from nas.space.searchspace import SearchSpace

__all__ = ["Choices", "SupernetSpec"]

Choices = tuple[Any, ...]

#: Fields whose weights depend on the data: a supernet serves one value of each.
_DATA_FIELDS = ("in_channels", "num_classes")


@dataclass(frozen=True)
class SupernetSpec:
    """Every field's choices as the space gives them (constants are 1-tuples).

    ``stages[i][op][field]`` are the choices of ``field`` in stage ``i`` under ``op``
    (only the fields that op reads; the others keep the genotype's defaults).
    """

    space: str
    top: Mapping[str, Choices]
    stem: Mapping[str, Choices]
    head: Mapping[str, Choices]
    stages: tuple[Mapping[str, Mapping[str, Choices]], ...]
    #: Each cell edge's op choices under its space label (``edge_1_0``...), in edge
    #: order; empty when the space has no cell.
    cell: Mapping[str, Choices] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_space(cls, space: SearchSpace) -> SupernetSpec:
        """The spec of ``space``; a NasError (naming the file and field) for what a
        supernet cannot cover: several data shapes."""
        found = choices(space)
        try:
            for name in _DATA_FIELDS:
                if len(found.top[name]) > 1:
                    raise NasError(
                        f"a supernet serves one {name}, the space offers "
                        f"{list(found.top[name])}: bind the data first (with_data)",
                        field=name,
                    )
        except NasError as err:
            raise err.at(source=space.source) from None
        return cls(
            space=space.name,
            top=dict(found.top),
            stem=dict(found.stem),
            head=dict(found.head),
            stages=tuple({op: dict(f) for op, f in s.items()} for s in found.stages),
            cell=dict(found.cell),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (choices as lists), for a checkpoint to record what it covers."""

        def plain(fields: Mapping[str, Choices]) -> dict[str, list[Any]]:
            return {k: list(c) for k, c in fields.items()}

        return {
            "space": self.space,
            "top": plain(self.top),
            "stem": plain(self.stem),
            "head": plain(self.head),
            "stages": [{op: plain(f) for op, f in ops.items()} for ops in self.stages],
            "cell": plain(self.cell),
        }

    @property
    def fingerprint(self) -> str:
        """sha256 of the choices (the space's name left out): equal exactly when two
        supernets have the same weight layout, so a checkpoint can be matched to a space."""
        body = self.to_dict()
        del body["space"]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def elastic(self) -> tuple[str, ...]:
        """The elastic fields (several choices), as ``stem.channels``, ``stages[1].op``
        or ``stages[1].ir.kernel``."""
        out = [k for k, c in self.top.items() if len(c) > 1]
        out += [f"cell.{k}" for k, c in self.cell.items() if len(c) > 1]
        out += [f"stem.{k}" for k, c in self.stem.items() if len(c) > 1]
        for i, ops in enumerate(self.stages):
            if len(ops) > 1:
                out.append(f"stages[{i}].op")
            out += [
                f"stages[{i}].{o}.{k}" for o, f in ops.items() for k, c in f.items() if len(c) > 1
            ]
        out += [f"head.{k}" for k, c in self.head.items() if len(c) > 1]
        return tuple(out)

    def widths(self, i: int) -> tuple[int, ...]:
        """Every width stage ``i``'s input can have (the stem's or the previous stage's)."""
        if i == 0:
            return tuple(sorted(self.stem["channels"]))
        outs = {c for f in self.stages[i - 1].values() for c in f["out_channels"]}
        return tuple(sorted(outs))

    def check(self, arch: Architecture) -> None:
        """A one-line NasError naming the first field of ``arch`` this supernet does not
        offer (an architecture of another space fails on its first differing field)."""
        where = f"the supernet of space {self.space!r}"
        for name, ch in self.top.items():
            _offered(getattr(arch, name), ch, name, where)
        if arch.cell and not self.cell:
            raise NasError(f"{where} has no cell", field="cell")
        if self.cell and not arch.cell:
            raise NasError(f"the architecture has no cell; {where} needs one", field="cell")
        for (label, ch), op in zip(self.cell.items(), arch.cell_ops, strict=True):
            _offered(op, ch, f"cell.{label}", where)
        for name, ch in self.stem.items():
            _offered(getattr(arch.stem, name), ch, f"stem.{name}", where)
        if len(arch.stages) != len(self.stages):
            raise NasError(
                f"{where} has {len(self.stages)} stages, the architecture {len(arch.stages)}",
                field="stages",
            )
        for i, (stage, ops) in enumerate(zip(arch.stages, self.stages, strict=True)):
            _offered(stage.op, tuple(ops), f"stages[{i}].op", where)
            for name, ch in ops[stage.op].items():
                _offered(getattr(stage, name), ch, f"stages[{i}].{name}", where)
        for name, ch in self.head.items():
            _offered(getattr(arch.head, name), ch, f"head.{name}", where)


def _offered(value: Any, ch: Choices, field: str, where: str) -> None:
    if value not in ch:
        shown = ", ".join(repr(c) for c in ch)
        raise NasError(f"{value!r} is not offered by {where} (choices: {shown})", field=field)
