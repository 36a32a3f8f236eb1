"""Files shipped with the package: search spaces and studies, found by name.

A wheel carries the repository's top-level folders as ``nas/_bundled/<folder>`` (see
pyproject's force-include); an editable install reads them from the repository.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING

import nas

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["bundled_tomls"]


def bundled_tomls(folder: str) -> dict[str, Traversable]:
    """name -> file for every ``<name>.toml`` in ``folder`` (the wheel's copy first)."""
    dirs: list[Traversable] = []
    wheel = importlib.resources.files("nas") / "_bundled" / folder
    if wheel.is_dir():
        dirs.append(wheel)
    repo = Path(nas.__file__).resolve().parents[1] / folder
    if repo.is_dir():
        dirs.append(repo)
    found: dict[str, Traversable] = {}
    for d in dirs:
        for entry in sorted(d.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml") and entry.is_file():
                found.setdefault(entry.name[: -len(".toml")], entry)
    return found
