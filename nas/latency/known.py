"""Modules whose latency is known by construction: how a timing harness is checked.

A network's true latency is never known, so a harness is checked on modules that take a
chosen time per call: ``BusyWait`` keeps a core busy for it (what a network does),
``Sleep`` leaves it idle. Used by the tests on the real measurement path and by
benchmarks/timing_checks.py, which asserts the figures on a machine left alone.
"""

from __future__ import annotations

import time

import torch
from torch import nn

__all__ = ["BusyWait", "Sleep"]


class BusyWait(nn.Module):
    """Spins for ``ms`` of wall time per call, returning its input."""

    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ns = int(ms * 1e6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        end = time.perf_counter_ns() + self.ns
        while time.perf_counter_ns() < end:
            pass
        return x


class Sleep(nn.Module):
    """Sleeps ``ms`` per call, returning its input: the CPU is idle, the wall time known."""

    def __init__(self, ms: float) -> None:
        super().__init__()
        self.s = ms / 1000

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.s)
        return x
