"""A fixed reference network timed beside every measurement: a drift diagnostic.

On a shared or throttled machine the same network can run 10-20% faster or slower twenty
minutes later (seen on this project's 2-core VM). Every stored figure carries a reading of
this canary taken seconds before it, and validation reports how far the machine has drifted
since the table was built. Scaling figures by the canary (``normalise``) was tried as a
correction and made predictions worse on 3 of 4 space/runtime pairs here (drift is not
uniform across workloads), so the predictor does not use it; refreshing the calibration
shortly before use (`nas latency calibrate`) is what keeps predictions on target.
"""

from __future__ import annotations

import time

from nas.arch import Architecture, Head, Stage, Stem
from nas.builder import build
from nas.latency.measure import MeasureSettings, NoisyMeasurementError, measure_runner
from nas.latency.runtimes import prepare
from nas.latency.target import Target

__all__ = ["CANARY", "Canary", "normalise"]

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


def normalise(ms: float, canary_ms: float, reference_ms: float) -> float:
    """``ms`` as it would have been at the reference canary speed (no reading: unchanged)."""
    if canary_ms > 0 and reference_ms > 0:
        return ms * reference_ms / canary_ms
    return ms
