"""``SearchSpace``: a validated space of Architectures, frozen and hashable.

Construction derives the walker's plan (``nas.space.plan``) and validates every choice
(``nas.space.check``), so a ``SearchSpace`` that exists is one whose every sample
decodes. Reading one from a file is ``nas.space.searchspace.load_space``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nas.core.errors import NasError
from nas.space.check import check
from nas.space.file import (
    TOP_FIELDS,
    Choices,
    Fields,
    StageSpace,
    parse_choices,
    parse_space,
    plain_int,
)
from nas.space.plan import Plan, make_plan

__all__ = ["SearchSpace"]


@dataclass(frozen=True)
class SearchSpace:
    """A validated space of Architectures. Frozen and hashable (choices are tuples).

    Build one with ``load_space`` or ``SearchSpace.from_dict``; constructing it directly
    expects canonical values (tuples, floats for float fields) and still validates them.
    """

    name: str
    #: Architecture-level fields (resolution, num_classes, in_channels, norm_eps, drop_path).
    top: Fields
    stem: Fields
    head: Fields
    stages: tuple[StageSpace, ...]
    description: str = ""
    #: The file it was read from (named in every error); "" when built in code.
    source: str = ""
    #: The ``[cell]`` table: each edge's op choices under its ``nb201_cell.PARAM_NAMES``
    #: label, in edge order; () when the space has no cell.
    cell: Fields = ()
    #: The walker's map, derived from the fields above (``nas.space.plan``).
    plan: Plan = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "cell", tuple(self.cell))
        try:
            if not isinstance(self.name, str) or not self.name.strip():
                raise NasError("a space needs a non-empty name", field="name")
            if not self.stages:
                raise NasError("a space needs at least one stage", field="stages")
            plan = make_plan(self.top, self.cell, self.stem, self.head, self.stages)
            object.__setattr__(self, "plan", plan)
            check(plan, cell=self.cell, stem=self.stem, stages=self.stages)
        except NasError as err:
            raise err.at(source=self.source) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "", name: str = "") -> SearchSpace:
        """Strict: unknown keys, wrong types, empty or duplicate choices are errors.

        ``name`` is the default for a file without a ``name`` key (its file stem).
        """
        try:
            kwargs = parse_space(data, name)
        except NasError as err:
            raise err.at(source=source) from None
        return cls(source=source, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The space as plain data in the file format (``from_dict`` reads it back)."""

        def value(choices: Choices) -> Any:
            return choices[0] if len(choices) == 1 else list(choices)

        out: dict[str, Any] = {"name": self.name, "description": self.description}
        out.update({k: value(c) for k, c in self.top})
        if self.cell:
            out["cell"] = {k: value(c) for k, c in self.cell}
        out["stem"] = {k: value(c) for k, c in self.stem}
        out["head"] = {k: value(c) for k, c in self.head}
        out["stages"] = [
            {
                "op": value(s.op),
                **{k: value(c) for k, c in s.fields},
                **{o: {k: value(c) for k, c in t} for o, t in s.overrides},
            }
            for s in self.stages
        ]
        return out

    def with_data(
        self,
        *,
        in_channels: int | Sequence[int] | None = None,
        num_classes: int | Sequence[int] | None = None,
        resolution: int | Sequence[int] | None = None,
    ) -> SearchSpace:
        """A copy with the dataset's input fixed (a study binds its dataset this way)."""
        top = dict(self.top)
        changes = {"in_channels": in_channels, "num_classes": num_classes, "resolution": resolution}
        try:
            for key, raw in changes.items():
                if raw is not None:
                    items = list(raw) if isinstance(raw, list | tuple) else [raw]
                    # Datasets often report sizes as numpy integers.
                    items = [plain_int(v) for v in items]
                    top[key] = parse_choices(items, TOP_FIELDS[key][0], key)
        except NasError as err:
            raise err.at(source=self.source) from None
        return replace(self, top=tuple(top.items()))
