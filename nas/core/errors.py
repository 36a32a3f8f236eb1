"""One error type for bad input: it always names where (file) and what (field)."""

from __future__ import annotations

from typing import Literal

__all__ = ["NasError", "one_line"]


class NasError(ValueError):
    """Invalid user input. ``str(err)`` is one line: ``<source>: <field>: <reason>``.

    The CLI prints that line and exits 2; library users catch ``NasError`` (a
    ``ValueError``) to tell bad input from bugs.
    """

    def __init__(self, reason: str, *, field: str = "", source: str = "") -> None:
        self.reason = " ".join(reason.split())
        self.field = field
        self.source = source
        super().__init__(self._line())

    def _line(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        return ": ".join([*parts, self.reason])

    def at(self, *, source: str | None = None, prefix: str | None = None) -> NasError:
        """The same error, placed in a file and/or under an enclosing field."""
        field = self.field
        if prefix:
            field = f"{prefix}.{field}" if field and not field.startswith("[") else prefix + field
        return NasError(self.reason, field=field, source=source or self.source)


def one_line(
    err: BaseException,
    *,
    line: Literal["first", "last", "all"] = "first",
    named: bool = False,
    limit: int = 500,
) -> str:
    """An exception as one line, for a message or a trial's recorded reason.

    ``first``: the message's first line (a library's summary line); ``last``: its last
    (a remote traceback ends with the error itself); ``all``: every line joined.
    ``named`` puts the exception type in front; an empty message gives the type alone.
    """
    lines = [s.strip() for s in str(err).splitlines() if s.strip()]
    if line == "all":
        text = " ".join(" ".join(lines).split())
    else:
        text = (lines[0] if line == "first" else lines[-1]) if lines else ""
    out = f"{type(err).__name__}: {text}" if named and text else text or type(err).__name__
    return out if len(out) <= limit else out[: limit - 3] + "..."
