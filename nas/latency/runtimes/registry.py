"""Runtimes are found by name here and nowhere else (no if/elif on runtime names)."""

from __future__ import annotations

from typing import TypeVar

from nas.core.errors import NasError
from nas.latency.runtimes.base import Runtime

__all__ = ["RUNTIMES", "TARGETS", "get_runtime", "register_runtime"]

RUNTIMES: dict[str, Runtime] = {}
#: Target name -> (runtime name, device), in registration order.
TARGETS: dict[str, tuple[str, str]] = {}

T = TypeVar("T", bound=type[Runtime])


def register_runtime(cls: T) -> T:
    """Class decorator: add one instance of the runtime under ``cls.name``, and its targets."""
    if cls.name in RUNTIMES:
        raise RuntimeError(f"runtime {cls.name!r} registered twice")
    taken = set(cls.targets) & set(TARGETS)
    if taken:
        raise RuntimeError(f"runtime {cls.name!r}: targets {sorted(taken)} registered twice")
    RUNTIMES[cls.name] = cls()
    TARGETS.update({target: (cls.name, device) for target, device in cls.targets.items()})
    return cls


def get_runtime(name: str, *, field: str = "runtime") -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise NasError(
            f"unknown runtime {name!r} (known: {', '.join(RUNTIMES)})", field=field
        ) from None
