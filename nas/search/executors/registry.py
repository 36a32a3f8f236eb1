"""Executors by name: what a study file may say, and where each one lives.

Light on purpose, and apart from the executor interface: the study config reads the
names, and an executor's module (with its framework) is imported only when a study runs
on it.
"""

from __future__ import annotations

import importlib

from nas.core.errors import NasError

__all__ = ["EXECUTORS", "executor_class"]

#: Executor name -> (module, class), in the order the study file's help lists them.
_REGISTRY: dict[str, tuple[str, str]] = {
    "ray": ("nas.search.executors.ray_tune", "RayTune"),
    "inprocess": ("nas.search.executors.inprocess", "InProcess"),
}
#: How trials may run: as Ray Tune trials (any cluster), or one by one in this process
#: (no Ray; for tabular studies, where a trial is a lookup, that is much faster).
EXECUTORS: tuple[str, ...] = tuple(_REGISTRY)


def executor_class(name: str) -> type:
    """The Executor subclass registered as ``name`` (nas.search.executors.base), its
    module imported now, not before: naming an executor needs no framework."""
    try:
        module, attr = _REGISTRY[name]
    except KeyError:
        raise NasError(
            f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})", field="executor"
        ) from None
    return getattr(importlib.import_module(module), attr)
