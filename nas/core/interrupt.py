"""Ctrl-C during a search: the first asks it to stop, the second aborts.

A long search is stopped by hand when its front looks good enough or the machine is
wanted back. The first Ctrl-C ends the trials that run (what finished is stored), skips
the trainings still to come and lets the search finish with what it has: the front
scored, exported, reported. A second Ctrl-C raises ``KeyboardInterrupt`` at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StopRequest", "stop_on_interrupt"]


class StopRequest:
    """Set when the user asked the search to stop; read by the trial loops (and by Ray
    Tune through a stopper) between trials."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking at once when the stop is asked for."""
        return self._event.wait(timeout_s)


@contextmanager
def stop_on_interrupt(stop: StopRequest, message: str = "") -> Iterator[StopRequest]:
    """Within: the first SIGINT sets ``stop``, writes ``message`` (if any) to stderr and
    puts the previous handler back, so the next one acts as it did before
    (KeyboardInterrupt by default). Signals reach only the main thread: elsewhere this
    installs nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def first(_sig: int, _frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)
        if message:  # os.write: safe wherever the signal interrupted the main thread
            os.write(2, f"\n{message}\n".encode())

    signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
