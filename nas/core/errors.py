"""One error type for bad input: it always names where (file) and what (field)."""

from __future__ import annotations

__all__ = ["NasError"]


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
