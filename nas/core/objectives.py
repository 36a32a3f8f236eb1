"""Objectives of a search: what is measured, which way is better, and MnasNet's
weighted reward. Fronts, ranks and hypervolume are :mod:`nas.core.pareto`'s.

Pure functions over plain numbers: Optuna and Ray never appear here.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.errors import NasError

__all__ = [
    "ACCURACY_LATENCY",
    "METRICS",
    "Objective",
    "mnasnet_reward",
]

#: Metric name -> direction. Accuracy is maximised, costs are minimised.
METRICS: dict[str, str] = {
    "accuracy": "maximize",
    "latency": "minimize",
    "params": "minimize",
    "macs": "minimize",
}
#: The directions of (accuracy, latency): the two-objective trade-off fronts are drawn in.
ACCURACY_LATENCY = (METRICS["accuracy"], METRICS["latency"])


@dataclass(frozen=True)
class Objective:
    """One optimised metric."""

    metric: str

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise NasError(
                f"unknown metric {self.metric!r} (known: {', '.join(METRICS)})", field="metrics"
            )

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def mnasnet_reward(accuracy: float, latency_ms: float, target_ms: float, w: float = -0.07) -> float:
    """MnasNet's soft-constrained reward ``acc * (lat / T) ** w`` (w = -0.07 by default)."""
    if latency_ms <= 0 or target_ms <= 0:
        raise ValueError("latencies must be positive")
    return accuracy * (latency_ms / target_ms) ** w
