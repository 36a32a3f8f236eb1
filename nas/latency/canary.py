"""A fixed reference network timed beside every measurement: drift and noise diagnostics.

On a shared or throttled machine the same network can run markedly faster or slower
minutes later (benchmarks/README.md). Every stored figure carries a reading of this canary
taken seconds before it, and validation reports how far the machine has drifted since the
table was built. Scaling figures by the canary was tried as a correction and made
predictions worse more often than better (drift is not uniform across workloads), so the
predictor does not use it; refreshing the calibration shortly before use (`nas latency
calibrate`) is what keeps predictions on target. ``steadiness`` (`nas latency noise`)
measures copies of the canary, or a space's networks, again and again, as a table build
or a validation measures a group of networks: how far any such figure on this machine
can be trusted now.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.core.errors import NasError
from nas.latency.measure import (
    Measurement,
    MeasureSettings,
    NoisyMeasurementError,
    measure_runner,
    measure_runners,
)
from nas.latency.runtimes import prepare_arch
from nas.latency.target import Target
from nas.model.arch import Architecture, Head, Stage, Stem

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
    """Networks measured again and again: how far this machine's figures can be trusted.

    Two measurements of one model agree no better than two measurements of the same kind
    of model taken as far apart, so the share of pairs within +-10% bounds what any latency
    predictor can be shown to reach here (nas.latency.workflow.validate's goal). The
    canary's weights stay in the nearest caches; a space's networks (weights of many MB)
    also wait on the shared last-level cache and memory, which neighbours on a shared
    machine slow down unevenly: measure those to judge a validation of that space.
    """

    #: Per network measured, its figures (ms) in time order, as the harness reported them.
    readings: tuple[tuple[float, ...], ...]
    #: Measurements the harness refused as too noisy, even after its retries.
    refused: int
    seconds: float

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.readings)

    def agreement(self, tolerance: float) -> float:
        """Share of pairs (earlier, later) of one network's readings within ``tolerance``
        of the earlier; NaN when no network has two."""
        pairs = [p for r in self.readings for p in itertools.combinations(r, 2)]
        if not pairs:
            return float("nan")
        return sum(abs(b - a) <= tolerance * a for a, b in pairs) / len(pairs)

    def relative_quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of readings divided by their network's median (1.0 is
        the typical figure); NaN with none."""
        ratios = [x / float(np.median(r)) for r in self.readings if r for x in r]
        return float(np.percentile(ratios, 100 * q)) if ratios else float("nan")

    def median_ms(self) -> float:
        """The median of each network's median reading (ms); NaN with none."""
        medians = [float(np.median(r)) for r in self.readings if r]
        return float(np.median(medians)) if medians else float("nan")


def steadiness(
    target: Target,
    seconds: float,
    *,
    archs: Sequence[Architecture] | None = None,
    copies: int = 8,
    on_reading: Callable[[float], None] = lambda _: None,
    clock: Callable[[], float] = time.perf_counter,
) -> Steadiness:
    """Measure ``archs`` (default: ``copies`` separately built canaries, whose readings
    are one network's) as one interleaved group, as a table build or a validation measures
    its networks, group after group for ``seconds``; ``on_reading`` gets the seconds
    elapsed after each group, by ``clock`` (seconds; a test scripts it to check when the
    loop ends without depending on how fast the machine measures)."""
    # The canary is measured as read beside every figure; networks as whole models are.
    settings = MeasureSettings.for_ops() if archs is None else MeasureSettings()
    archs = [CANARY] * copies if archs is None else list(archs)
    if not archs:
        raise NasError("needs at least one network to measure", field="networks")
    runners = [prepare_arch(a, target) for a in archs]
    # Copies of one network (the canary's) pool their readings: pairs across copies count.
    pools: dict[str, list[float]] = {a.id: [] for a in archs}
    readings = [pools[a.id] for a in archs]
    refused = 0
    start = clock()
    while True:  # at least once
        for mine, result in zip(readings, measure_runners(runners, settings), strict=True):
            if isinstance(result, Measurement):
                mine.append(result.ms)
            else:
                refused += 1
        elapsed = clock() - start
        on_reading(elapsed)
        if elapsed >= seconds:
            break
    return Steadiness(tuple(map(tuple, pools.values())), refused, clock() - start)
