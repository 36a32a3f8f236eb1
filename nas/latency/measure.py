"""The measurement harness: warm up until timings settle, take repeated samples, report
the median with its spread, and refuse figures the machine was too noisy to give.

Every sample times ``inner`` back-to-back inferences (enough to last ``min_sample_ms``),
so a 20-microsecond op is not lost in timer resolution; on CUDA samples are taken
with CUDA events after a synchronisation.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
]


@dataclass(frozen=True)
class MeasureSettings:
    """How hard to try. Defaults suit a whole model; ``for_ops()`` is lighter."""

    samples: int = 21
    #: Each sample lasts at least this long (inner repetitions are added to reach it).
    min_sample_ms: float = 2.0
    min_warmup: int = 10
    #: Warm-up ends when two successive windows' medians agree within this fraction...
    settle_tolerance: float = 0.05
    settle_window: int = 5
    #: ...or after this long.
    max_warmup_s: float = 2.0
    #: A figure whose interquartile range exceeds this fraction of its median is noisy.
    max_rel_iqr: float = 0.10
    #: Noisy figures are measured again this many times before giving up.
    retries: int = 3

    @classmethod
    def for_ops(cls) -> MeasureSettings:
        return cls(samples=15, min_sample_ms=1.0, min_warmup=5, max_warmup_s=1.0)


@dataclass(frozen=True)
class Measurement:
    """Latency of one inference in milliseconds, with its spread."""

    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    samples: int
    inner: int
    warmup: int
    attempts: int
    #: Wall time the measurement took (warm-up and retries included).
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
    is the least noisy attempt (for a caller that can use a rough figure)."""

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
    """Run until two successive windows agree; returns (calls made, last median ms)."""
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


def _quartiles(xs: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def measure_runner(
    runner: Runner, settings: MeasureSettings | None = None, *, fingerprint_key: str = ""
) -> Measurement:
    """Measure a prepared runner; raise NoisyMeasurementError if it never settles."""
    s = settings or MeasureSettings()
    start = time.perf_counter()
    best: Measurement | None = None
    with runner.session():
        runner.call()  # first call: allocation, compilation, lazy initialisation
        timed = _timer(runner)
        for attempt in range(1, s.retries + 2):
            warm, per_call = _warm_up(timed, s)
            inner = max(1, int(s.min_sample_ms / max(per_call, 1e-6)) + 1)
            xs = [timed(inner) for _ in range(s.samples)]
            q1, q3 = _quartiles(xs)
            m = Measurement(
                median_ms=statistics.median(xs),
                iqr_ms=q3 - q1,
                mean_ms=statistics.fmean(xs),
                std_ms=statistics.stdev(xs) if len(xs) > 1 else 0.0,
                samples=len(xs),
                inner=inner,
                warmup=warm,
                attempts=attempt,
                cost_s=time.perf_counter() - start,
                fingerprint=fingerprint_key,
            )
            if best is None or m.rel_iqr < best.rel_iqr:
                best = m
            if m.rel_iqr <= s.max_rel_iqr:
                return m
    assert best is not None
    err = NoisyMeasurementError(
        f"timings did not settle after {s.retries + 1} attempts (best spread: IQR "
        f"{100 * best.rel_iqr:.0f}% of the median {best.median_ms:.3f} ms, limit "
        f"{100 * s.max_rel_iqr:.0f}%); the machine is too busy for a trustworthy figure",
        field="latency",
    )
    err.best = best
    raise err


def measure_module(
    module: nn.Module,
    input_shape: tuple[int, int, int],
    target: Target,
    settings: MeasureSettings | None = None,
) -> Measurement:
    """Latency of ``module`` on one batch of ``(C, H, W)`` inputs on ``target``."""
    runner = prepare(module, (target.batch, *input_shape), target)
    return measure_runner(runner, settings, fingerprint_key=fingerprint(target).key)
