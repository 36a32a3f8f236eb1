"""A fixed reference network timed beside every measurement: drift and noise diagnostics.

On a shared or throttled machine the same network can run 10-20% faster or slower twenty
minutes later (seen on this project's 2-core VM). Every stored figure carries a reading of
this canary taken seconds before it, and validation reports how far the machine has drifted
since the table was built. Scaling figures by the canary was tried as a correction and made
predictions worse on 3 of 4 space/runtime pairs here (drift is not uniform across
workloads), so the predictor does not use it; refreshing the calibration shortly before use
(`nas latency calibrate`) is what keeps predictions on target. ``steadiness`` (`nas latency
noise`) measures copies of the canary again and again, as a table build or a validation
measures a group of networks: how far any such figure on this machine can be trusted now.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nas.arch import Architecture, Head, Stage, Stem
from nas.latency.measure import (
    Measurement,
    MeasureSettings,
    NoisyMeasurementError,
    measure_runner,
    measure_runners,
)
from nas.latency.runtimes import prepare_arch
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
    """Reads of the canary on one target."""

    def __init__(self, target: Target, settings: MeasureSettings | None = None) -> None:
        self._runner = prepare_arch(CANARY, target)
        self._settings = settings or MeasureSettings.for_ops()

    def read(self) -> float:
        """The canary's figure (ms) now; 0.0 (no reading) when the machine is too busy to
        time it: it is a diagnostic and must never stop the measurements it annotates."""
        try:
            return measure_runner(self._runner, self._settings).ms
        except NoisyMeasurementError:
            return 0.0


@dataclass(frozen=True)
class Steadiness:
    """The canary measured again and again: how far this machine's figures can be trusted.

    Two measurements of one model agree no better than two measurements of the canary
    taken as far apart, so the share of pairs within +-10% bounds what any latency
    predictor can be shown to reach here (nas.latency.workflow.validate's goal).
    """

    #: Canary figures (ms) in time order, as the harness reported them.
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
    copies: int = 8,
    on_reading: Callable[[float], None] = lambda _: None,
) -> Steadiness:
    """Measure ``copies`` separately built canaries as one interleaved group (as a table
    build or a validation measures its networks), group after group for ``seconds``;
    ``on_reading`` gets the seconds elapsed after each group."""
    runners = [prepare_arch(CANARY, target) for _ in range(copies)]
    settings = MeasureSettings.for_ops()
    readings: list[float] = []
    refused = 0
    start = time.perf_counter()
    while True:  # at least once
        for result in measure_runners(runners, settings):
            if isinstance(result, Measurement):
                readings.append(result.ms)
            else:
                refused += 1
        elapsed = time.perf_counter() - start
        on_reading(elapsed)
        if elapsed >= seconds:
            break
    return Steadiness(tuple(readings), refused, time.perf_counter() - start)
