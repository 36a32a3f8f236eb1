"""Optuna's NSGA-II, made picklable for Ray Tune."""

from __future__ import annotations

import threading
from typing import Any

from optuna.samplers import NSGAIISampler

__all__ = ["PicklableNSGAIISampler"]


class PicklableNSGAIISampler(NSGAIISampler):
    """Optuna's NSGA-II, picklable again: Ray Tune pickles its searcher (with the
    sampler) when a Tuner starts, and Optuna 5.1's genetic samplers hold a
    ``threading.Lock`` (``_thread_lock``) that pickle refuses. The lock guards a
    per-process cache, so a copy gets a fresh one."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()
