"""Shared pieces of the command line: error handling and plain-text tables."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from nas.core.errors import NasError

if TYPE_CHECKING:
    from nas.search.config import StudyConfig

__all__ = [
    "PLOTLYJS_OPTION",
    "BarProgress",
    "handles_bad_input",
    "human",
    "require_stored",
    "table",
]

F = TypeVar("F", bound=Callable[..., Any])

#: ``--plotlyjs`` of the commands that write report pages (nas.report.document.PLOTLYJS).
PLOTLYJS_OPTION = typer.Option(
    "inline",
    "--plotlyjs",
    help="inline (offline, ~4.8 MB a page) | directory (plotly.min.js beside it: small "
    "pages, offline) | cdn (small pages, needs the network)",
)


def handles_bad_input(fn: F) -> F:
    """Turn NasError into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NasError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def table(headers: list[str], rows: list[list[Any]], right: set[int] | None = None) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = right or set()
    lines = []
    for n, row in enumerate(cells):
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


class BarProgress:
    """The ``Progress`` protocol of nas.latency.workflow as rich progress bars on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._console = Console(stderr=True)
        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def __exit__(self, kind: object, err: object, tb: object) -> None:
        if isinstance(err, NasError):  # the error's one line ends the output, no bar above it
            self._bar.live.transient = True
        self._bar.stop()

    def start(self, label: str, total: int) -> None:
        self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def note(self, message: str) -> None:
        self._bar.console.print(message)


def require_stored(cfg: StudyConfig, storage_option: str | None) -> None:
    """Refuse, in one line, a command that reads a study from a SQLite file that does not
    exist (nas.core.db.check_stored), naming where the URL came from."""
    from nas.core.db import check_stored

    if storage_option is not None:
        check_stored(cfg.search.storage, field="--storage", source="command line")
    else:
        check_stored(cfg.search.storage, field="search.storage", source=cfg.source)
