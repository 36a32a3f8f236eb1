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
        # Set by a signal handler, which must not take the Event's lock: the main thread
        # it interrupts may hold that very lock (inside Event.wait), and would wait on
        # itself forever. A helper thread sets the Event (``stop_on_interrupt``).
        self._asked = False

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._asked or self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking at once when the stop is asked for."""
        return self._event.wait(timeout_s) or self._asked


def _relay(stop: StopRequest, read_fd: int) -> None:
    """Set ``stop``'s Event once the handler wrote its byte; end when the pipe closes."""
    while True:
        byte = os.read(read_fd, 1)
        if not byte:
            return
        stop.set()


@contextmanager
def stop_on_interrupt(stop: StopRequest, message: str = "") -> Iterator[StopRequest]:
    """Within: the first SIGINT sets ``stop``, writes ``message`` (if any) to stderr and
    puts the previous handler back, so the next one acts as it did before
    (KeyboardInterrupt by default). Signals reach only the main thread: elsewhere this
    installs nothing.

    The handler only sets a flag and writes to a pipe (both safe wherever the signal
    lands); a helper thread reading the pipe wakes whoever waits on ``stop``."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)
    read_fd, write_fd = os.pipe()
    relay = threading.Thread(target=_relay, args=(stop, read_fd), daemon=True)
    relay.start()

    def first(_sig: int, _frame: object) -> None:
        stop._asked = True
        os.write(write_fd, b"!")
        signal.signal(signal.SIGINT, previous)
        if message:  # os.write: safe wherever the signal interrupted the main thread
            os.write(2, f"\n{message}\n".encode())

    signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
        os.close(write_fd)  # the relay reads end-of-file and returns
        relay.join()
        os.close(read_fd)
