"""The measurement harness: warm up until timings settle, take windows of repeated samples,
and report the fastest sample, once two windows have found it; refuse figures the machine
was too noisy to give.

Why the fastest sample: contention only ever slows a call. On this project's shared 2-core
VM the same network ran in a fast mode (0.55 ms) or ~1.4x slower, in stretches of
seconds; a window's median lands in whichever mode the window fell in (two measurements
of one network agreed within +-10% for 29-37% of networks), while the fastest sample of
three windows, interleaved with other networks' windows so that they fall seconds apart,
agreed for 97.5% (benchmarks/README.md). ``measure_runners`` interleaves the windows of
many runners that way; ``measure_runner`` takes one runner's windows back to back.

Every sample times ``inner`` back-to-back inferences (enough to last ``min_sample_ms``),
so a 20-microsecond op is not lost in timer resolution; on CUDA samples are taken
with CUDA events after a synchronisation.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas.errors import NasError
from nas.latency.runtimes import Runner, prepare
from nas.latency.target import Target, fingerprint

__all__ = [
    "MeasureSettings",
    "Measurement",
    "NoisyMeasurementError",
    "measure_module",
    "measure_runner",
    "measure_runners",
]


@dataclass(frozen=True)
class MeasureSettings:
    """How hard to try. Defaults suit a whole model; ``for_ops()`` is lighter."""

    #: Samples per window.
    samples: int = 21
    #: Each sample lasts at least this long (inner repetitions are added to reach it).
    min_sample_ms: float = 2.0
    min_warmup: int = 10
    #: Warm-up ends when two successive runs of calls agree within this fraction...
    settle_tolerance: float = 0.05
    settle_window: int = 5
    #: ...or after this long.
    max_warmup_s: float = 2.0
    #: Windows per measurement (each warmed up afresh).
    windows: int = 3
    #: The figure is trusted once the fastest samples of two windows agree this closely.
    floor_tolerance: float = 0.05
    #: Windows added, one at a time, while no two agree; then the figure is refused.
    retries: int = 3

    @classmethod
    def for_ops(cls) -> MeasureSettings:
        return cls(samples=15, min_sample_ms=1.0, min_warmup=5, max_warmup_s=1.0)


@dataclass(frozen=True)
class Measurement:
    """Latency of one inference in milliseconds: ``ms``, with the spread of all samples."""

    #: The figure: the fastest sample of any window.
    ms: float
    #: How far apart the two fastest windows' fastest samples are (relative): the figure's
    #: own uncertainty.
    floor_gap: float
    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    #: Samples over all windows.
    samples: int
    inner: int
    windows: int
    warmup: int
    #: Wall time the measurement took (warm-ups included).
    cost_s: float
    fingerprint: str = ""

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean) of the samples."""
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0


class NoisyMeasurementError(NasError):
    """The machine was too busy to give a stable figure, even after retries. ``best``
    is the measurement as taken (for a caller that can use a rough figure)."""

    best: Measurement | None = None


def _timer(runner: Runner) -> Callable[[int], float]:
    """Milliseconds per call over ``inner`` back-to-back calls."""
    call = runner.call
    if runner.cuda:
        sync = torch.cuda.synchronize

        def cuda_time(inner: int) -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            sync()
            start.record()
            for _ in range(inner):
                call()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / inner

        return cuda_time

    def cpu_time(inner: int) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            call()
        return (time.perf_counter_ns() - t0) / 1e6 / inner

    return cpu_time


def _warm_up(timed: Callable[[int], float], s: MeasureSettings) -> tuple[int, float]:
    """Run until two successive runs of calls agree; returns (calls made, last median ms)."""
    times: list[float] = []
    deadline = time.perf_counter() + s.max_warmup_s
    w = s.settle_window
    while True:
        times.append(timed(1))
        if len(times) >= max(s.min_warmup, 2 * w):
            prev = statistics.median(times[-2 * w : -w])
            last = statistics.median(times[-w:])
            if abs(last - prev) <= s.settle_tolerance * prev or time.perf_counter() > deadline:
                return len(times), last


class _Windows:
    """The windows taken so far of one runner."""

    def __init__(self, runner: Runner, s: MeasureSettings) -> None:
        self.runner = runner
        self.s = s
        self.timed: Callable[[int], float] | None = None
        self.inner = 0
        self.floors: list[float] = []
        self.samples: list[float] = []
        self.warmup = 0
        self.cost_s = 0.0

    def take(self) -> None:
        t0 = time.perf_counter()
        with self.runner.session():
            if self.timed is None:
                self.runner.call()  # first call: allocation, compilation, lazy initialisation
                self.timed = _timer(self.runner)
            warm, per_call = _warm_up(self.timed, self.s)
            if not self.inner:
                self.inner = max(1, int(self.s.min_sample_ms / max(per_call, 1e-6)) + 1)
            xs = [self.timed(self.inner) for _ in range(self.s.samples)]
        self.floors.append(min(xs))
        self.samples += xs
        self.warmup += warm
        self.cost_s += time.perf_counter() - t0

    @property
    def gap(self) -> float:
        first, second = sorted(self.floors)[:2]
        return (second - first) / first if first > 0 else 0.0

    def result(self, fingerprint_key: str) -> Measurement | NoisyMeasurementError:
        xs = self.samples
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        m = Measurement(
            ms=min(self.floors),
            floor_gap=self.gap,
            median_ms=statistics.median(xs),
            iqr_ms=q3 - q1,
            mean_ms=statistics.fmean(xs),
            std_ms=statistics.stdev(xs),
            samples=len(xs),
            inner=self.inner,
            windows=len(self.floors),
            warmup=self.warmup,
            cost_s=self.cost_s,
            fingerprint=fingerprint_key,
        )
        if m.floor_gap <= self.s.floor_tolerance:
            return m
        err = NoisyMeasurementError(
            f"timings did not settle: the fastest samples of the best two of {m.windows} "
            f"windows differ by {100 * m.floor_gap:.0f}% (limit "
            f"{100 * self.s.floor_tolerance:.0f}%); the machine is too busy for a "
            "trustworthy figure",
            field="latency",
        )
        err.best = m
        return err


def measure_runners(
    runners: Sequence[Runner],
    settings: MeasureSettings | None = None,
    *,
    fingerprint_key: str = "",
) -> list[Measurement | NoisyMeasurementError]:
    """Measure prepared runners with their windows interleaved (round by round, so one
    runner's windows fall as far apart as the others take); per runner its Measurement,
    or the NoisyMeasurementError it earned (with ``best`` set)."""
    s = settings or MeasureSettings()
    if s.windows < 2 or s.samples < 2:
        raise NasError("a measurement needs at least 2 windows of 2 samples", field="latency")
    taken = [_Windows(r, s) for r in runners]
    for _ in range(s.windows):
        for w in taken:
            w.take()
    for _ in range(s.retries):
        pending = [w for w in taken if w.gap > s.floor_tolerance]
        if not pending:
            break
        for w in pending:
            w.take()
    return [w.result(fingerprint_key) for w in taken]


def measure_runner(
    runner: Runner, settings: MeasureSettings | None = None, *, fingerprint_key: str = ""
) -> Measurement:
    """Measure one prepared runner (windows back to back); raise NoisyMeasurementError
    if no two windows agree."""
    (result,) = measure_runners([runner], settings, fingerprint_key=fingerprint_key)
    if isinstance(result, NoisyMeasurementError):
        raise result
    return result


def measure_module(
    module: nn.Module,
    input_shape: tuple[int, int, int],
    target: Target,
    settings: MeasureSettings | None = None,
) -> Measurement:
    """Latency of ``module`` on one batch of ``(C, H, W)`` inputs on ``target``."""
    runner = prepare(module, (target.batch, *input_shape), target)
    return measure_runner(runner, settings, fingerprint_key=fingerprint(target).key)
