"""How the latency steps report progress: a small protocol the CLI draws as bars.

The steps take a ``Progress`` so that they stay free of any terminal library; ``Silent``
is the default for library use and tests.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Progress", "Silent"]


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...


class Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        pass
