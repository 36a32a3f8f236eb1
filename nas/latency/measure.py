"""The measurement harness: warm up until timings settle, take windows of repeated samples
interleaved with other runners' windows, and report a figure from the windows' floors
(each window's fastest sample), once two views of them agree; refuse figures the machine
was too noisy to give.

Why floors: contention only ever slows a call. On a shared machine the same network can
run in a fast mode or a slow one, in stretches of seconds; a window's median lands in
whichever mode the window fell in, while its fastest sample is far steadier
(benchmarks/README.md, "The fastest sample of interleaved windows"). Windows of many
runners are interleaved (``measure_runners``), so that one runner's windows fall seconds
apart.

Which floor: a unit of a table (``MeasureSettings.for_ops``) reports the fastest of its
3 windows, trusted once the two fastest agree. A whole model reports the median of its 18
short windows' floors, trusted once the first and the second half's medians agree: the
fastest floor is an extreme value, and on a drifting machine the median of more floors
repeats itself far better (benchmarks/README.md, "Whole models: the median of window
floors, and anchors"); short windows catch the machine at more moments (a window's error
is shared by windows taken close to it in time and by nothing else, "Many short
windows"). ``measure_runner`` takes one runner's windows back to back.

Pacing (``Pacing``): runners timed in every round beside the measured ones (a space's
anchor networks, nas.latency.anchors) tell how fast the machine ran in that round; each
window floor is divided by its round's speed before the figure is taken and judged, so a
machine that drifts or stalls for a round does not move the figure, nor get it refused.

Every sample times ``inner`` back-to-back inferences (enough to last ``min_sample_ms``),
so a 20-microsecond op is not lost in timer resolution; on CUDA samples are taken
with CUDA events after a synchronisation.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas.core.errors import NasError
from nas.latency.runtimes import Runner, prepare
from nas.latency.target import Target, fingerprint

__all__ = [
    "MeasureSettings",
    "Measurement",
    "NoisyMeasurementError",
    "Pacing",
    "measure_module",
    "measure_runner",
    "measure_runners",
]


@dataclass(frozen=True)
class MeasureSettings:
    """How hard to try. Defaults suit a whole model; ``for_ops()`` is lighter."""

    #: Samples per window. Many short windows rather than a few long ones: the machine's
    #: speed moves within seconds, so a figure from more, shorter windows repeats itself
    #: better, for somewhat more time per figure (benchmarks/README.md, "Many short
    #: windows").
    samples: int = 7
    #: Each sample lasts at least this long (inner repetitions are added to reach it).
    min_sample_ms: float = 2.0
    min_warmup: int = 10
    #: Warm-up ends when two successive runs of calls agree within this fraction...
    settle_tolerance: float = 0.05
    settle_window: int = 5
    #: ...or after this long.
    max_warmup_s: float = 2.0
    #: Windows per measurement (each warmed up afresh).
    windows: int = 18
    #: The figure from the windows' floors (each window's fastest sample): ``median``, or
    #: ``fastest`` (the fastest sample of all). See ``Measurement.floor_gap`` for when
    #: each is trusted.
    figure: str = "median"
    #: The figure is trusted once its floor gap is at most this.
    floor_tolerance: float = 0.05
    #: Windows added, one at a time, while the gap is wider; then the figure is refused.
    retries: int = 3

    @classmethod
    def for_ops(cls) -> MeasureSettings:
        """A unit's figure: the fastest of 3 windows, lighter windows (a table has
        thousands of units, and a network's prediction sums some twenty of them). Seven
        samples of 0.5 ms give the figures fifteen of 1 ms gave, taken beside them, at a
        fraction of the cost (benchmarks/README.md, "Where a first run's time went")."""
        return cls(
            samples=7, min_sample_ms=0.5, min_warmup=5, max_warmup_s=1.0, windows=3,
            figure="fastest",
        )  # fmt: skip

    @classmethod
    def for_calibration(cls) -> MeasureSettings:
        """A calibration model's figure: half the windows of a validated one. The fit
        runs over tens of models, and their errors average out in it: calibrations
        from 9 windows validated as well as from 18, in half the time (benchmarks/
        README.md, "A trial's release, and the first calibration's windows")."""
        return cls(windows=9)

    @property
    def label(self) -> str:
        """How a figure was taken, stored beside whole-model figures so that figures
        taken another way are never mixed with them."""
        return f"{self.figure} of {self.windows} window floors of {self.samples} samples"


@dataclass(frozen=True)
class Measurement:
    """Latency of one inference in milliseconds: ``ms``, with the spread of all samples."""

    #: The figure, from the windows' floors (MeasureSettings.figure).
    ms: float
    #: The figure's own uncertainty (relative): for the fastest sample, how far apart the
    #: two fastest windows' floors are; for the median, how far apart the median floors
    #: of the first and of the second half of the windows are.
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
    #: How slow the machine ran against the pacers' reference (``Pacing``): ``ms`` is the
    #: figure at the reference speed, ``ms * speed`` the figure as measured; the samples'
    #: statistics are as measured. 1.0 without pacing.
    speed: float = 1.0

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

    clock = runner.clock

    def cpu_time(inner: int) -> float:
        t0 = clock()
        for _ in range(inner):
            call()
        return (clock() - t0) / 1e6 / inner

    return cpu_time


def _warm_up(
    timed: Callable[[int], float], s: MeasureSettings, clock: Callable[[], int]
) -> tuple[int, float]:
    """Run until two successive runs of calls agree; returns (calls made, last median ms)."""
    times: list[float] = []
    deadline = clock() + int(s.max_warmup_s * 1e9)
    w = s.settle_window
    while True:
        times.append(timed(1))
        if len(times) >= max(s.min_warmup, 2 * w):
            prev = statistics.median(times[-2 * w : -w])
            last = statistics.median(times[-w:])
            if abs(last - prev) <= s.settle_tolerance * prev or clock() > deadline:
                return len(times), last


@dataclass(frozen=True)
class Pacing:
    """Runners timed in every round beside the measured ones, and how to read the rounds'
    speeds from their window floors: ``speeds(floors)`` gets each pacer's floors (one
    per round so far, in round order) and returns one speed per round (the time a round
    took over the time at the reference speed)."""

    runners: Sequence[Runner]
    speeds: Callable[[list[list[float]]], list[float]]


class _Windows:
    """The windows taken so far of one runner, and the rounds they were taken in."""

    def __init__(self, runner: Runner, s: MeasureSettings) -> None:
        self.runner = runner
        self.s = s
        self.timed: Callable[[int], float] | None = None
        self.inner = 0
        self.raw_floors: list[float] = []
        self.rounds: list[int] = []
        #: Each round's speed (Pacing); empty: unpaced.
        self.speeds: list[float] = []
        self.samples: list[float] = []
        self.warmup = 0
        self.cost_s = 0.0

    @property
    def floors(self) -> list[float]:
        """The windows' floors at the pacers' reference speed (as measured, unpaced)."""
        if not self.speeds:
            return self.raw_floors
        return [f / self.speeds[r] for f, r in zip(self.raw_floors, self.rounds, strict=True)]

    def take(self, round_: int = 0) -> None:
        clock = self.runner.clock
        t0 = clock()
        with self.runner.session():
            if self.timed is None:
                self.runner.call()  # first call: allocation, compilation, lazy initialisation
                self.timed = _timer(self.runner)
            warm, per_call = _warm_up(self.timed, self.s, clock)
            if not self.inner:
                self.inner = max(1, int(self.s.min_sample_ms / max(per_call, 1e-6)) + 1)
            xs = [self.timed(self.inner) for _ in range(self.s.samples)]
        self.raw_floors.append(min(xs))
        self.rounds.append(round_)
        self.samples += xs
        self.warmup += warm
        self.cost_s += (clock() - t0) / 1e9

    def _figure(self, floors: list[float]) -> float:
        return min(floors) if self.s.figure == "fastest" else statistics.median(floors)

    @property
    def figure(self) -> float:
        return self._figure(self.floors)

    @property
    def gap(self) -> float:
        """``fastest``: how far apart the two fastest floors are; ``median``: the median
        floors of the first and of the second half of the windows (had the measurement
        stopped halfway, or started then, how far off would it be)."""
        if self.s.figure == "fastest":
            a, b = sorted(self.floors)[:2]
        else:
            half = len(self.floors) // 2
            halves = (self.floors[:half], self.floors[len(self.floors) - half :])
            a, b = sorted(map(statistics.median, halves))
        return (b - a) / a if a > 0 else 0.0

    def _disagree(self, windows: int) -> str:
        if self.s.figure == "fastest":
            return f"the fastest samples of the best two of {windows} windows"
        return f"the median window floors of the first and the second half of {windows} windows"

    def result(self, fingerprint_key: str) -> Measurement | NoisyMeasurementError:
        xs = self.samples
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        m = Measurement(
            ms=self.figure,
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
            speed=self._figure(self.raw_floors) / self.figure if self.figure > 0 else 1.0,
        )
        if m.floor_gap <= self.s.floor_tolerance:
            return m
        err = NoisyMeasurementError(
            f"timings did not settle: {self._disagree(m.windows)} differ by "
            f"{100 * m.floor_gap:.0f}% (limit "
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
    pacing: Pacing | None = None,
) -> list[Measurement | NoisyMeasurementError]:
    """Measure prepared runners with their windows interleaved (round by round, so one
    runner's windows fall as far apart as the others take; ``pacing``'s runners take a
    window in every round and their floors pace the others'); per runner its
    Measurement, or the NoisyMeasurementError it earned (with ``best`` set)."""
    s = settings or MeasureSettings()
    if s.windows < 2 or s.samples < 2:
        raise NasError("a measurement needs at least 2 windows of 2 samples", field="latency")
    if s.figure not in ("median", "fastest"):
        raise NasError(f"unknown figure {s.figure!r} (median or fastest)", field="figure")
    taken = [_Windows(r, s) for r in runners]
    pacers = [_Windows(r, s) for r in pacing.runners] if pacing else []
    rounds = 0

    def run(windows: list[_Windows]) -> None:
        nonlocal rounds
        for w in windows + pacers:
            w.take(rounds)
        rounds += 1
        if pacing and pacers and rounds >= s.windows:
            speeds = list(pacing.speeds([p.raw_floors for p in pacers]))
            if len(speeds) != rounds or min(speeds) <= 0:
                raise ValueError(f"pacing gave {speeds} for {rounds} rounds")
            for w in taken:
                w.speeds = speeds

    for _ in range(s.windows):
        run(taken)
    for _ in range(s.retries):
        pending = [w for w in taken if w.gap > s.floor_tolerance]
        if not pending:
            break
        run(pending)
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
