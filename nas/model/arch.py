"""The genotype: frozen value types that describe a network exactly.

An Architecture is plain data (no torch): canonical JSON with a lossless round trip,
a stable ``id`` (sha256 of the canonical JSON, equal in every process) and compact
one-line stage strings in timm's style (``ir_r2_k5_s2_e6_c40_se0.25``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nas.core.errors import NasError
from nas.core.strict import from_plain, positive_int
from nas.model import nb201_cell
from nas.model.ops import OPTIONAL_FIELDS, BlockSpec, get_op
from nas.model.ops.layers import ACTIVATIONS

__all__ = ["Architecture", "Head", "Stage", "Stem", "load_architecture"]


def _as_float(obj: Any, *names: str) -> None:
    """Store float fields as floats (0 and 0.0 must give the same canonical JSON)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(obj, name, float(value))


def _activation(value: str, name: str) -> None:
    if value not in ACTIVATIONS:
        raise NasError(
            f"unknown activation {value!r} (known: {', '.join(ACTIVATIONS)})", field=name
        )


@dataclass(frozen=True)
class Stem:
    """The first convolution: conv k x k, stride s, BN, activation."""

    channels: int
    kernel: int = 3
    stride: int = 2
    activation: str = "relu"

    def __post_init__(self) -> None:
        positive_int(self.channels, "channels")
        if self.kernel not in (1, 3, 5, 7):
            raise NasError(f"kernel must be one of [1, 3, 5, 7], got {self.kernel}", field="kernel")
        if self.stride not in (1, 2):
            raise NasError(f"stride must be 1 or 2, got {self.stride}", field="stride")
        _activation(self.activation, "activation")


@dataclass(frozen=True)
class Head:
    """Classifier: 1x1 conv to ``channels`` (0: none), global average pool, dropout, linear."""

    channels: int = 0
    dropout: float = 0.0
    activation: str = "relu"

    def __post_init__(self) -> None:
        _as_float(self, "dropout")
        if self.channels < 0:
            raise NasError(
                f"must be >= 0 (0 means no 1x1 conv), got {self.channels}", field="channels"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise NasError(f"must be in [0, 1), got {self.dropout}", field="dropout")
        _activation(self.activation, "activation")


_TOKEN = re.compile(r"^(se|[rkscdea])(.+)$")
_TOKEN_FIELD = {
    "r": "repeats",
    "k": "kernel",
    "s": "stride",
    "e": "expansion",
    "c": "out_channels",
    "d": "dilation",
    "se": "se_ratio",
    "a": "activation",
}


@dataclass(frozen=True)
class Stage:
    """``repeats`` blocks of one op; the first has ``stride``, the rest stride 1.

    Fields an op does not read (see ``Op.fields``) must keep their defaults, so one
    network has exactly one description (and one id).
    """

    op: str
    out_channels: int
    repeats: int = 1
    stride: int = 1
    kernel: int = 3
    expansion: int = 1
    dilation: int = 1
    se_ratio: float = 0.0
    activation: str = "relu"

    def __post_init__(self) -> None:
        _as_float(self, "se_ratio")
        op = get_op(self.op)
        positive_int(self.out_channels, "out_channels")
        positive_int(self.repeats, "repeats")
        for name, default in OPTIONAL_FIELDS.items():
            if name not in op.fields and getattr(self, name) != default:
                raise NasError(
                    f"op {self.op!r} does not use {name}; leave it at its default {default!r}",
                    field=name,
                )
        # Checks that need no input channels (those wait for Architecture).
        op.validate(self.block(self.out_channels, first=False))
        if self.stride not in (1, 2):
            raise NasError(f"stride must be 1 or 2, got {self.stride}", field="stride")

    def block(self, cin: int, *, first: bool, cell: str = "") -> BlockSpec:
        """The stage's first block (or one of the others) on ``cin`` input channels;
        ``cell`` (the architecture's) goes only to an op that reads it."""
        return BlockSpec(
            op=self.op,
            cin=cin,
            cout=self.out_channels,
            kernel=self.kernel,
            stride=self.stride if first else 1,
            dilation=self.dilation,
            expansion=self.expansion,
            se_ratio=self.se_ratio,
            activation=self.activation,
            cell=cell if get_op(self.op).reads_cell else "",
        )

    @property
    def compact(self) -> str:
        """``op_r2_k5_s2_e6_c40_d2_se0.25_asilu``; fields the op does not read are left out."""
        op = get_op(self.op)
        parts = [self.op, f"r{self.repeats}"]
        if "kernel" in op.fields:
            parts.append(f"k{self.kernel}")
        parts.append(f"s{self.stride}")
        if "expansion" in op.fields:
            parts.append(f"e{self.expansion}")
        parts.append(f"c{self.out_channels}")
        if "dilation" in op.fields and self.dilation != 1:
            parts.append(f"d{self.dilation}")
        if "se_ratio" in op.fields and self.se_ratio > 0:
            parts.append(f"se{self.se_ratio:g}")
        if "activation" in op.fields:
            parts.append(f"a{self.activation}")
        return "_".join(parts)

    @classmethod
    def parse(cls, text: str) -> Stage:
        """Inverse of ``compact``: unknown or repeated tokens are errors, not ignored."""
        op, *tokens = text.strip().split("_")
        values: dict[str, Any] = {}
        for token in tokens:
            m = _TOKEN.match(token)
            if not m:
                raise NasError(f"cannot read token {token!r} in stage {text!r}")
            name = _TOKEN_FIELD[m.group(1)]
            if name in values:
                raise NasError(f"token {token!r} repeats {name} in stage {text!r}", field=name)
            raw = m.group(2)
            try:
                if name == "activation":
                    values[name] = raw
                elif name == "se_ratio":
                    values[name] = float(raw)
                else:
                    values[name] = int(raw)
            except ValueError:
                raise NasError(
                    f"bad value in token {token!r} of stage {text!r}", field=name
                ) from None
        if "out_channels" not in values:
            raise NasError(f"stage {text!r} has no c<channels> token", field="out_channels")
        return cls(op=op, **values)


@dataclass(frozen=True)
class Architecture:
    """A whole network: input, stem, stages, head. Plain data; ``nas.model.builder`` builds it.

    ``cell`` is the NAS-Bench-201 cell (official arch string, see ``nas.bench.nb201``) that
    every block of a cell-reading op (``Op.reads_cell``, e.g. ``nb201``) uses: given
    exactly when some stage has such an op, "" otherwise (one network, one description).
    """

    resolution: int
    num_classes: int
    stem: Stem
    stages: tuple[Stage, ...]
    head: Head = field(default_factory=Head)
    in_channels: int = 3
    norm_eps: float = 1e-5
    drop_path: float = 0.0
    #: A label only: it is kept in the JSON but not in ``id`` (same network, same id).
    name: str = ""
    #: The NAS-Bench-201 cell of the cell-op stages ("" when there are none).
    cell: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        _check_cell(self)
        _as_float(self, "norm_eps", "drop_path")
        positive_int(self.resolution, "resolution")
        positive_int(self.num_classes, "num_classes")
        positive_int(self.in_channels, "in_channels")
        if not self.stages:
            raise NasError("an architecture needs at least one stage", field="stages")
        if not 0.0 < self.norm_eps < 1.0:
            raise NasError(f"must be in (0, 1), got {self.norm_eps}", field="norm_eps")
        if not 0.0 <= self.drop_path < 1.0:
            raise NasError(f"must be in [0, 1), got {self.drop_path}", field="drop_path")
        for i, stage in enumerate(self.stages):
            cin = self.stem.channels if i == 0 else self.stages[i - 1].out_channels
            try:
                op = get_op(stage.op)
                op.validate(stage.block(cin, first=True, cell=self.cell))
                if stage.repeats > 1:
                    op.validate(stage.block(stage.out_channels, first=False, cell=self.cell))
            except NasError as err:
                raise err.at(prefix=f"stages[{i}]") from None

    # -- structure ------------------------------------------------------------------

    def blocks(self) -> Iterator[tuple[int, int, BlockSpec]]:
        """Every block in execution order as (stage index, block index, spec)."""
        cin = self.stem.channels
        for i, stage in enumerate(self.stages):
            for j in range(stage.repeats):
                yield i, j, stage.block(cin, first=j == 0, cell=self.cell)
                cin = stage.out_channels

    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)

    @property
    def out_channels(self) -> int:
        return self.stages[-1].out_channels

    # -- serialisation --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data; ``cell`` only when there is one (so the ids of architectures
        without a cell are those they had before cells existed)."""
        out = {
            "name": self.name,
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "norm_eps": self.norm_eps,
            "drop_path": self.drop_path,
            "stem": _plain(self.stem),
            "stages": [_plain(s) for s in self.stages],
            "head": _plain(self.head),
        }
        if self.cell:
            out["cell"] = self.cell
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """Canonical JSON: sorted keys, every field present; ``indent`` only for display."""
        seps = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, separators=seps)

    @property
    def id(self) -> str:
        """sha256 of the canonical JSON without the ``name`` label: stable across processes."""
        body = self.to_dict()
        del body["name"]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> Architecture:
        """Strict: unknown keys, missing keys and wrong types are errors naming the field.

        Stages may be given as dicts or as compact strings.
        """
        try:
            return from_plain(cls, data, strings={Stage: Stage.parse})
        except NasError as err:
            raise err.at(source=source) from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "") -> Architecture:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise NasError(
                f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}",
                source=source,
            ) from None
        except RecursionError:  # the decoder recurses once per nesting level
            raise NasError("JSON nested too deeply to be an architecture", source=source) from None
        return cls.from_dict(data, source=source)

    def compact(self) -> str:
        """The whole network on one line; a cell as ``cell<op index per edge>`` (indices
        into ``nas.bench.nb201.OPS``, edges in the arch string's order) at the end."""
        stem = f"stem_k{self.stem.kernel}_s{self.stem.stride}_c{self.stem.channels}"
        head = f"head_c{self.head.channels}"
        parts = [f"{self.resolution}px", stem, *(s.compact for s in self.stages), head]
        if self.cell:
            parts.append("cell" + "".join(str(nb201_cell.OPS.index(op)) for op in self.cell_ops))
        return " ".join(parts)

    @property
    def cell_ops(self) -> tuple[str, ...]:
        """The cell's 6 edge ops in ``nas.bench.nb201.EDGES`` order (() without a cell)."""
        return nb201_cell.parse(self.cell) if self.cell else ()

    def replace(self, **changes: Any) -> Architecture:
        return replace(self, **changes)


def _check_cell(arch: Architecture) -> None:
    """A cell exactly when some stage reads one; stored as the official arch string."""
    if not isinstance(arch.cell, str):
        raise NasError(f"expected a string, got {type(arch.cell).__name__}", field="cell")
    users = [i for i, s in enumerate(arch.stages) if get_op(s.op).reads_cell]
    if arch.cell:
        try:
            ops = nb201_cell.parse(arch.cell.strip())
        except NasError as err:
            raise NasError(
                f"not a NAS-Bench-201 cell ('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'): {err.reason}",
                field="cell",
            ) from None
        object.__setattr__(arch, "cell", nb201_cell.format_cell(ops))
        if not users:
            raise NasError(
                "no stage uses a cell op (such as nb201): leave cell empty", field="cell"
            )
    elif users:
        i = users[0]
        raise NasError(
            f"stages[{i}] uses op {arch.stages[i].op!r}, which needs a NAS-Bench-201 cell: "
            "give cell as an arch string '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'",
            field="cell",
        )


def _plain(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def load_architecture(path: str | Path) -> Architecture:
    """Read an architecture file; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise NasError(f"cannot read architecture file: {err.strerror}", source=str(p)) from None
    arch = Architecture.from_json(text, source=str(p))
    return arch if arch.name else arch.replace(name=p.stem)
