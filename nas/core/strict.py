"""Strict construction of frozen dataclasses from plain data (JSON, TOML), and the
value checks every module's ``__post_init__`` shares (one wording for one rule).

Unknown keys, missing required keys and wrong types are NasErrors that name the field by
its path (``stages[2].kernel``, ``train.lr``); values are then checked by the
dataclass's own ``__post_init__``, whose errors get the same path prefix.
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

from nas.core.errors import NasError

__all__ = [
    "fraction",
    "from_plain",
    "integer",
    "is_int",
    "is_number",
    "positive_int",
    "positive_number",
]

T = TypeVar("T")

#: Dataclasses that may also be written as one string, with the parser that reads it.
StringForms = Mapping[type, Callable[[str], Any]]

_HINTS: dict[type, dict[str, Any]] = {}


def is_int(value: object) -> bool:
    """An int, not a bool (True is an int to Python, never a count to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(value: object, name: str) -> None:
    """An integer >= 1 (not a bool), or a NasError naming ``name``."""
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise NasError(f"must be a positive integer, got {value!r}", field=name)


def positive_number(value: object, name: str) -> None:
    """A finite number > 0, or a NasError naming ``name``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise NasError(f"must be a number, got {value!r}", field=name)
    if not (math.isfinite(value) and value > 0):
        raise NasError(f"must be a finite number > 0, got {value}", field=name)


def integer(value: object, name: str, *, minimum: int | None = None) -> int:
    """An integral value (numpy's too; not a bool, not a float) >= ``minimum``, as int."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or (minimum is not None and int(value) < minimum):  # type: ignore[arg-type]
        what = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise NasError(f"must be {what}, got {value!r}", field=name)
    return int(value)  # type: ignore[arg-type]


def fraction(value: object, name: str) -> None:
    """A number in [0, 1), or a NasError naming ``name``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not 0.0 <= value < 1.0:  # type: ignore[operator]
        raise NasError(f"must be a number in [0, 1), got {value!r}", field=name)


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def from_plain(cls: type[T], data: Any, path: str = "", strings: StringForms | None = None) -> T:
    """``cls(**data)`` with every field converted and checked; see the module docstring."""
    strings = strings or {}
    if cls in strings and isinstance(data, str):
        try:
            return strings[cls](data)
        except NasError as err:
            raise err.at(prefix=path) if path else err from None
    if not isinstance(data, Mapping):
        raise NasError(f"expected a table/object, got {type(data).__name__}", field=path or "(top)")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            raise NasError(
                f"unknown field (known: {', '.join(known)})", field=_join(path, str(key))
            )
    kwargs: dict[str, Any] = {}
    hints = _hints(cls)
    for name, f in known.items():
        where = _join(path, name)
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise NasError("missing required field", field=where)
            continue
        kwargs[name] = _convert(hints[name], data[name], where, strings)
    try:
        return cls(**kwargs)
    except NasError as err:
        raise err.at(prefix=path) if path else err from None


def _convert(hint: Any, value: Any, where: str, strings: StringForms) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list | tuple):
            raise NasError(f"expected a list, got {type(value).__name__}", field=where)
        return tuple(_convert(item, v, f"{where}[{i}]", strings) for i, v in enumerate(value))
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where, strings)
            except NasError as err:
                errors.append(err.reason)
        raise NasError(" or ".join(errors), field=where)
    if isinstance(hint, type) and is_dataclass(hint):
        return from_plain(hint, value, where, strings)
    if hint is bool:
        if not isinstance(value, bool):
            raise NasError(f"expected true or false, got {value!r}", field=where)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise NasError(f"expected an integer, got {value!r}", field=where)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise NasError(f"expected a number, got {value!r}", field=where)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise NasError(f"expected a string, got {value!r}", field=where)
        return value
    raise TypeError(f"unsupported field type {hint!r}")  # pragma: no cover - a programming error
