"""What every ``nas latency`` command shares: its options and the target they describe.

``takes_target`` gives a command the target options and hands it the parsed ``Target``,
so the options are defined once and read the same way by every command.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from nas.latency.runtimes import DTYPES, TARGETS

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "DB",
    "FINGERPRINT",
    "RESOLUTION",
    "SPACE",
    "space_of",
    "takes_target",
]

DB = typer.Option(
    "sqlite:///nas_latency.db", "--db", help="SQLAlchemy URL of the latency database."
)
TARGET = typer.Option("cpu", "--target", help=" | ".join(TARGETS))
THREADS = typer.Option(None, "--threads", help="Runtime threads (default 1).")
BATCH = typer.Option(None, "--batch", help="Batch size (default 1).")
DTYPE = typer.Option(None, "--dtype", help=" | ".join(DTYPES))
AMP = typer.Option(None, "--amp/--no-amp", help="CUDA autocast.")
CHANNELS_LAST = typer.Option(None, "--channels-last/--no-channels-last", help="CUDA NHWC.")
SPACE = typer.Option(..., "--space", help="Space name or .toml path.")
RESOLUTION = typer.Option(None, "--resolution", help="Fix the space's input resolution.")
FINGERPRINT = typer.Option(
    None, "--fingerprint", help="Use the table with this key (another machine's)."
)


_TARGET_OPTIONS = {  # name: (annotation, typer option)
    "target": (str, TARGET),
    "threads": (int | None, THREADS),
    "batch": (int | None, BATCH),
    "dtype": (str | None, DTYPE),
    "amp": (bool | None, AMP),
    "channels_last": (bool | None, CHANNELS_LAST),
}


def takes_target(*, cuda: bool = True, measures: bool = True) -> Callable[[F], F]:
    """Give a command the target options (``--target --threads --batch --dtype``, and
    ``--amp --channels-last`` when ``cuda``) and hand it the parsed target as ``tgt``:
    one definition for every ``nas latency`` command. A command that ``measures`` first
    checks that the target's runtime and device are here, before it opens (and so
    creates) a database: bad input writes nothing."""
    names = [n for n in _TARGET_OPTIONS if cuda or n not in ("amp", "channels_last")]

    def deco(fn: F) -> F:
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "tgt"]
        added = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
            for n, (ann, opt) in _TARGET_OPTIONS.items()
            if n in names
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            from nas.latency.target import parse_target

            opts = {n: kwargs.pop(n) for n in names}
            kwargs["tgt"] = parse_target(opts.pop("target"), **opts)
            if measures:
                from nas.latency.runtimes.dispatch import check_available

                check_available(kwargs["tgt"])
            return fn(**kwargs)

        wrapper.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {
            **{k: v for k, v in fn.__annotations__.items() if k != "tgt"},
            **{p.name: p.annotation for p in added},
        }
        return wrapper  # type: ignore[return-value]

    return deco


def space_of(name: str, resolution: int | None):
    """The space by name or path, its resolution fixed (and named) when one is given."""
    from nas.space.searchspace import load_space

    space = load_space(name)
    if resolution is not None:
        space = space.with_data(resolution=resolution)
        space = dataclasses.replace(space, name=f"{space.name}@{resolution}")
    return space
