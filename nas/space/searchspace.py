"""Search spaces: declarative TOML files of choices, walked into Architectures.

A space file gives every genotype field either a fixed value or a list of choices. One
walker (``_traverse``) does the conditional traversal: a stage's field is only chosen
when the stage's chosen op reads it (``Op.fields``); otherwise it keeps its default, so
one network is one genotype (one ``id``). Everything else goes through that walker:

* ``decode(space, params)`` is the single path from a flat ``{label: value}`` dict to an
  Architecture; ``encode`` is its inverse and ``contains`` asks whether ``encode`` works;
* ``walk(space, choose)`` collects a params dict by asking ``choose`` for each active
  dimension; ``sample`` (Optuna, ``trial.suggest_categorical`` only) and ``sample_random``
  (numpy Generator) are ``walk`` followed by ``decode``;
* ``dimensions`` and ``size`` read the same per-op branches the walker follows.

A ``[cell]`` table gives the choices of each edge of a NAS-Bench-201 cell
(``Architecture.cell``) under the labels of ``nas.bench.nb201.PARAM_NAMES`` (``edge_1_0``
...), so a sampler can map a trial's params to a cell with ``nb201_cell.ops_from_params``.
The walker visits them right after the top-level fields and assembles the arch string
with ``nb201_cell.format_cell``. A cell is always active: a space with a ``[cell]`` table
needs a stage whose every op choice reads the cell (``Op.reads_cell``), and a stage
with such an op needs the table.

Labels are deterministic (``resolution``, ``stem_channels``, ``s2_kernel``,
``s2_dil_dilation``): a label always has the same choices in every trial, so Optuna's
samplers (TPE included) see one distribution per name even in conditional spaces. Per-op
override tables (``[stages.dil]``) get their own label for that reason.

Spaces are validated when loaded: every choice of every field an op reads is checked by
the genotype itself (``Stage``/``Stem``/``Head``/``Architecture`` and ``Op.validate``),
including channel flow (skip/pool need equal widths) against every width the previous
stage can produce. So every params dict the walker can produce decodes, and ``size`` is
exact.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nas.core.bundled import bundled_tomls
from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.ops import OPS, get_op
from nas.space.file import (
    STAGE_FIELDS,
    TOP_FIELDS,
    Choices,
    Fields,
    StageSpace,
    fmt_choices,
    parse_choices,
    parse_space,
    plain_int,
    reads_field,
)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import numpy as np

__all__ = [
    "Choices",
    "Dimension",
    "SearchSpace",
    "SpaceChoices",
    "StageSpace",
    "choices",
    "contains",
    "decode",
    "dimensions",
    "encode",
    "list_spaces",
    "load_space",
    "sample",
    "sample_random",
    "size",
    "walk",
]

#: Beyond this many (combination x input width) checks per stage and op, load-time
#: validation checks each choice on its own instead of every combination.
_MAX_CHECKS = 200_000

# -- value types ----------------------------------------------------------------------


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
class _Plan:
    """The walker's map, derived once per space: every field as a Dimension, per op."""

    top: tuple[Dimension, ...]
    #: The cell's edges in ``nb201_cell.EDGES`` order (() without a ``[cell]`` table).
    cell: tuple[Dimension, ...]
    stem: tuple[Dimension, ...]
    head: tuple[Dimension, ...]
    #: Per stage: the op dimension and, per op, the dimensions that op reads.
    stages: tuple[tuple[Dimension, Mapping[str, tuple[Dimension, ...]]], ...]


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
    _plan: _Plan = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "cell", tuple(self.cell))
        try:
            if not isinstance(self.name, str) or not self.name.strip():
                raise NasError("a space needs a non-empty name", field="name")
            if not self.stages:
                raise NasError("a space needs at least one stage", field="stages")
            object.__setattr__(self, "_plan", _make_plan(self))
            _check(self)
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


class _Trial(Protocol):
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


# -- the walker -------------------------------------------------------------------------

_Values = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, Any]]


def _traverse(space: SearchSpace, visit: Callable[[Dimension], Any]) -> _Values:
    """THE conditional traversal: ``visit`` returns each field's value (constants too).

    Only the fields the chosen op of each stage reads are visited; the rest keep the
    genotype's defaults. ``visit`` must return one of ``dim.choices``. The cell's edges
    come right after the top-level fields and become ``top["cell"]`` (an arch string).
    """
    plan = space._plan
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


def _assemble(values: _Values) -> Architecture:
    top, stem, stages, head = values
    return Architecture(
        stem=Stem(**stem),
        stages=tuple(Stage(**s) for s in stages),
        head=Head(**head),
        **top,
    )


def _match(value: Any, choices: Choices) -> Any:
    """The choice equal to ``value`` (so 0 finds 0.0), never matching bools to numbers."""
    for choice in choices:
        if isinstance(value, bool) or isinstance(value, str) != isinstance(choice, str):
            continue
        if value == choice:
            return choice
    raise KeyError(value)


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
            params[d.label] = _match(value, d.choices)
        except KeyError:
            raise NasError(
                f"chose {value!r}, not one of its choices ({fmt_choices(d.choices)})", field=d.label
            ) from None
        return params[d.label]

    _traverse(space, visit)
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
            return _match(value, d.choices)
        except KeyError:
            raise NasError(
                f"{value!r} is not a choice of space {space.name!r} (choices: {fmt_choices(d.choices)})",
                field=d.label,
            ) from None

    values = _traverse(space, visit)
    for key in params:
        if key not in used:
            raise NasError(_unused_reason(space, key, params), field=str(key))
    return _assemble(values)


def _unused_reason(space: SearchSpace, key: object, params: Mapping[str, object]) -> str:
    for d in _all_fields(space):
        if d.label != key:
            continue
        if len(d.choices) == 1:
            return f"not a parameter: fixed to {fmt_choices(d.choices)} in space {space.name!r}"
        return (
            f"inactive: it applies only when s{d.stage}_op is one of ({fmt_choices(d.ops or ())}), "
            f"got {params.get(f's{d.stage}_op')!r}"
        )
    return f"unknown parameter for space {space.name!r}"


def sample(space: SearchSpace, trial: _Trial) -> Architecture:
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
            choice = _match(value, d.choices)
        except KeyError:
            raise NasError(
                f"{value!r} is outside space {space.name!r} (choices: {fmt_choices(d.choices)})",
                field=d.field,
            ) from None
        if len(d.choices) > 1:
            params[d.label] = choice
        return choice

    _traverse(space, visit)
    return params


def contains(space: SearchSpace, arch: Architecture) -> bool:
    """Whether ``arch`` is one of the space's architectures."""
    try:
        encode(space, arch)
    except NasError:
        return False
    return True


def _all_fields(space: SearchSpace) -> Iterator[Dimension]:
    """Every field of every branch, constants included, each label once, in label order."""
    plan = space._plan
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


def dimensions(space: SearchSpace) -> list[Dimension]:
    """Every searchable label (2+ choices) with its choices and, if conditional, its ops."""
    return [d for d in _all_fields(space) if len(d.choices) > 1]


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
    plan = space._plan
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
    plan = space._plan
    n = math.prod(len(d.choices) for d in (*plan.top, *plan.cell, *plan.stem, *plan.head))
    for op_dim, branches in plan.stages:
        n *= sum(math.prod(len(d.choices) for d in branches[op]) for op in op_dim.choices)
    return n


# -- the plan and load-time validation -------------------------------------------------------


def _make_plan(space: SearchSpace) -> _Plan:
    top = tuple(Dimension(k, c, k) for k, c in space.top)
    cell = tuple(Dimension(k, c, f"cell.{k}") for k, c in space.cell)
    stem = tuple(Dimension(f"stem_{k}", c, f"stem.{k}") for k, c in space.stem)
    head = tuple(Dimension(f"head_{k}", c, f"head.{k}") for k, c in space.head)
    stages = []
    for i, st in enumerate(space.stages):
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
        stages.append((Dimension(f"s{i}_op", st.op, f"stages[{i}].op", i), branches))
    return _Plan(top, cell, stem, head, tuple(stages))


def _check(space: SearchSpace) -> None:
    """Every choice the walker can take gives a valid genotype (errors name file fields)."""
    plan = space._plan
    _check_cell(space)
    for part, cls, dims in (("stem", Stem, plan.stem), ("head", Head, plan.head)):
        for combo in itertools.product(*(d.choices for d in dims)):
            try:
                cls(**{d.attr: v for d, v in zip(dims, combo, strict=True)})
            except NasError as err:
                raise err.at(prefix=part) from None
    cins = {c: "stem.channels" for c in dict(space.stem)["channels"]}
    for i, (op_dim, branches) in enumerate(plan.stages):
        outs: dict[int, str] = {}
        for o in op_dim.choices:
            _check_stage(i, o, branches[o], cins)
            for d in branches[o]:
                if d.attr == "out_channels":
                    outs.update({c: f"stages[{i}].out_channels" for c in d.choices})
        cins = outs
    # Architecture-level fields: through Architecture's own checks, one choice at a time.
    base = _assemble(_traverse(space, lambda d: d.choices[0]))
    for d in plan.top:
        for value in d.choices[1:]:
            base.replace(**{d.attr: value})


def _check_cell(space: SearchSpace) -> None:
    """A ``[cell]`` table exactly when a stage always has a cell op (so the cell is always
    active: no conditional cell, one genotype per network)."""
    names = [nb201_cell.PARAM_NAMES.index(k) for k, _ in space.cell]
    if space.cell and names != list(range(len(nb201_cell.PARAM_NAMES))):
        raise NasError(f"expected the edges {', '.join(nb201_cell.PARAM_NAMES)}", field="cell")
    users = [i for i, st in enumerate(space.stages) if any(OPS[o].reads_cell for o in st.op)]
    always = [i for i, st in enumerate(space.stages) if all(OPS[o].reads_cell for o in st.op)]
    if space.cell and not always:
        partly = f" (stages[{users[0]}] only sometimes)" if users else ""
        raise NasError(
            "unused: no stage has a cell op (such as nb201) as every op choice" + partly,
            field="cell",
        )
    if users and not space.cell:
        i = users[0]
        ops = [o for o in space.stages[i].op if OPS[o].reads_cell]
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


# -- loading -------------------------------------------------------------------------------


def _bundled() -> dict[str, Traversable]:
    return bundled_tomls("search_spaces")


def list_spaces() -> list[str]:
    """Names of the bundled spaces (``load_space(name)`` loads one)."""
    return sorted(_bundled())


def _loads(text: str, *, source: str, name: str) -> SearchSpace:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise NasError(f"malformed TOML: {err}", source=source) from None
    return SearchSpace.from_dict(data, source=source, name=name)


def load_space(name_or_path: str | os.PathLike[str]) -> SearchSpace:
    """A bundled space by name (``mobile``) or a ``.toml`` file by path; errors name the file."""
    text = os.fspath(name_or_path)
    if (
        isinstance(name_or_path, os.PathLike)
        or text.endswith(".toml")
        or "/" in text
        or (os.sep in text)
    ):
        path = Path(text)
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as err:
            raise NasError(
                f"cannot read search space file: {err.strerror}", source=str(path)
            ) from None
        except UnicodeDecodeError:
            raise NasError("search space file is not UTF-8 text", source=str(path)) from None
        return _loads(content, source=str(path), name=path.stem)
    known = _bundled()
    if text not in known:
        raise NasError(
            f"unknown search space {text!r} (known: {', '.join(sorted(known)) or 'none'}; "
            "or give the path of a .toml file)",
            field="space",
        )
    entry = known[text]
    return _loads(entry.read_text(encoding="utf-8"), source=str(entry), name=text)
