"""A fixed reference network timed beside every measurement: drift and noise diagnostics.

On a shared or throttled machine the same network can run 10-20% faster or slower twenty
minutes later (seen on this project's 2-core VM). Every stored figure carries a reading of
this canary taken seconds before it, and validation reports how far the machine has drifted
since the table was built. Scaling figures by the canary was tried as a correction and made
predictions worse on 3 of 4 space/runtime pairs here (drift is not uniform across
workloads), so the predictor does not use it; refreshing the calibration shortly before use
(`nas latency calibrate`) is what keeps predictions on target. ``steadiness`` (`nas latency
noise`) measures the canary again and again: how far any figure on this machine can be
trusted right now.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nas.arch import Architecture, Head, Stage, Stem
from nas.builder import build
from nas.latency.measure import MeasureSettings, NoisyMeasurementError, measure_runner
from nas.latency.runtimes import prepare
from nas.latency.target import Target

__all__ = ["CANARY", "Canary", "Steadiness", "steadiness"]

#: Mixes what the search spaces contain: dense, depthwise, pointwise, SE, a linear head.
CANARY = Architecture(
    name="canary",
    resolution=32,
    num_classes=10,
    stem=Stem(16, stride=2),
    stages=(
        Stage.parse("ir_r1_k3_s1_e6_c24_se0.25_arelu6"),
        Stage.parse("ds_r1_k5_s2_c32_arelu"),
        Stage.parse("conv_r1_k3_s1_c32_arelu"),
    ),
    head=Head(channels=128),
)


class Canary:
    """Reads of the canary on one target; ``read_every(s)`` re-times it at most every s."""

    def __init__(self, target: Target, settings: MeasureSettings | None = None) -> None:
        shape = (target.batch, CANARY.in_channels, CANARY.resolution, CANARY.resolution)
        self._runner = prepare(build(CANARY, seed=0), shape, target)
        self._settings = settings or MeasureSettings.for_ops()
        self._last = 0.0
        self._at = float("-inf")

    def read(self) -> float:
        """The canary's median ms now; 0.0 (no reading) when the machine is too busy to
        time it: it is a diagnostic and must never stop the measurements it annotates."""
        try:
            self._last = measure_runner(self._runner, self._settings).median_ms
        except NoisyMeasurementError:
            self._last = 0.0
        self._at = time.perf_counter()
        return self._last

    def read_every(self, seconds: float) -> float:
        if time.perf_counter() - self._at > seconds:
            return self.read()
        return self._last


@dataclass(frozen=True)
class Steadiness:
    """The canary measured again and again: how far this machine's figures can be trusted.

    Two measurements of one model agree no better than two measurements of the canary
    taken as far apart, so the share of pairs within +-10% bounds what any latency
    predictor can be shown to reach here (nas.latency.workflow.validate's goal).
    """

    #: Canary medians (ms) in time order, as the harness reported them.
    readings: tuple[float, ...]
    #: Measurements the harness refused as too noisy, even after its retries.
    refused: int
    seconds: float

    def agreement(self, tolerance: float) -> float:
        """Share of pairs (earlier, later) of readings within ``tolerance`` of the earlier."""
        pairs = list(itertools.combinations(self.readings, 2))
        if not pairs:
            return float("nan")
        return sum(abs(b - a) <= tolerance * a for a, b in pairs) / len(pairs)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the readings, linearly interpolated; NaN with none."""
        return float(np.percentile(self.readings, 100 * q)) if self.readings else float("nan")


def steadiness(
    target: Target,
    seconds: float,
    *,
    pause_s: float = 0.25,
    on_reading: Callable[[float], None] = lambda _: None,
) -> Steadiness:
    """Measure the canary with the harness's usual settings for ``seconds``, ``pause_s``
    apart; ``on_reading`` gets the seconds elapsed after each measurement."""
    shape = (target.batch, CANARY.in_channels, CANARY.resolution, CANARY.resolution)
    runner = prepare(build(CANARY, seed=0), shape, target)
    settings = MeasureSettings.for_ops()
    readings: list[float] = []
    refused = 0
    start = time.perf_counter()
    while True:  # at least once
        try:
            readings.append(measure_runner(runner, settings).median_ms)
        except NoisyMeasurementError:
            refused += 1
        elapsed = time.perf_counter() - start
        on_reading(elapsed)
        if elapsed >= seconds:
            break
        time.sleep(pause_s)
    return Steadiness(tuple(readings), refused, time.perf_counter() - start)
