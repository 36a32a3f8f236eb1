"""Search spaces: declarative TOML files of choices, walked into Architectures.

A space file gives every genotype field either a fixed value or a list of choices. One
walker (``nas.space.walker.traverse``) does the conditional traversal: a stage's field is
only chosen when the stage's chosen op reads it (``Op.fields``); otherwise it keeps its
default, so one network is one genotype (one ``id``). Everything else goes through that
walker (``codec``, ``summary``); ``definition`` holds ``SearchSpace`` itself. This module
loads spaces, and every name below is importable from here:

* ``decode(space, params)`` is the single path from a flat ``{label: value}`` dict to an
  Architecture; ``encode`` is its inverse and ``contains`` asks whether ``encode`` works;
* ``walk(space, choose)`` collects a params dict by asking ``choose`` for each active
  dimension; ``sample`` (Optuna, ``trial.suggest_categorical`` only) and ``sample_random``
  (numpy Generator) are ``walk`` followed by ``decode``;
* ``dimensions`` and ``size`` read the same per-op branches the walker follows.

A ``[cell]`` table gives the choices of each edge of a NAS-Bench-201 cell
(``Architecture.cell``) under the labels of ``nb201_cell.PARAM_NAMES`` (``edge_1_0``
...), so a sampler can map a trial's params to a cell with ``nb201_cell.ops_from_params``.
The walker visits them right after the top-level fields and assembles the arch string
with ``nb201_cell.format_cell``. A cell is always active: a space with a ``[cell]`` table
needs a stage whose every op choice reads the cell (``Op.reads_cell``), and a stage
with such an op needs the table.

Labels are deterministic (``resolution``, ``stem_channels``, ``s2_kernel``,
``s2_dil_dilation``): a label always has the same choices in every trial, so Optuna's
samplers (TPE included) see one distribution per name even in conditional spaces. Per-op
override tables (``[stages.dil]``) get their own label for that reason.

Spaces are validated when loaded (``nas.space.check``): every choice of every field an
op reads is checked by the genotype itself (``Stage``/``Stem``/``Head``/``Architecture``
and ``Op.validate``), including channel flow (skip/pool need equal widths) against every
width the previous stage can produce. So every params dict the walker can produce
decodes, and ``size`` is exact.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nas.core.bundled import bundled_tomls
from nas.core.tomlfile import load_toml
from nas.space.codec import contains, decode, encode, sample, sample_random, walk
from nas.space.definition import SearchSpace
from nas.space.file import Choices, StageSpace
from nas.space.plan import Dimension
from nas.space.summary import SpaceChoices, choices, dimensions, size

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

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


# -- loading -------------------------------------------------------------------------------


def _bundled() -> dict[str, Traversable]:
    return bundled_tomls("search_spaces")


def list_spaces() -> list[str]:
    """Names of the bundled spaces (``load_space(name)`` loads one)."""
    return sorted(_bundled())


def load_space(name_or_path: str | os.PathLike[str]) -> SearchSpace:
    """A bundled space by name (``mobile``) or a ``.toml`` file by path; errors name the file."""
    file = load_toml(name_or_path, folder="search_spaces", kind="search space", field="space")
    return SearchSpace.from_dict(file.data, source=file.source, name=file.name)
