"""Ops are found by name here and nowhere else (no if/elif on op names)."""

from __future__ import annotations

from typing import TypeVar

from nas.core.errors import NasError
from nas.model.ops.base import Op

__all__ = ["OPS", "get_op", "register"]

OPS: dict[str, Op] = {}

T = TypeVar("T", bound=type[Op])


def register(cls: T) -> T:
    """Class decorator: add one instance of the op to the registry under ``cls.name``."""
    if cls.name in OPS:
        raise RuntimeError(f"op {cls.name!r} registered twice")
    OPS[cls.name] = cls()
    return cls


def get_op(name: str, *, field: str = "op") -> Op:
    try:
        return OPS[name]
    except KeyError:
        raise NasError(
            f"unknown op {name!r} (known: {', '.join(sorted(OPS))})", field=field
        ) from None
