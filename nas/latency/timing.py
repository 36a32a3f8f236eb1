"""The measurement loop of the latency steps: units and whole models timed in groups.

Items are measured a group at a time with their windows interleaved (one network's
windows then fall seconds apart, nas.latency.measure), whole models paced by the space's
anchors, and a step retries what the machine was too busy for a growing pause later. The
table build, the calibration and the validation all time through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from nas.latency.anchors import Anchors
from nas.latency.canary import Canary
from nas.latency.cold import cold_copies, cold_key
from nas.latency.lut import LatencyTable, ModelRecord
from nas.latency.measure import (
    Measurement,
    MeasureSettings,
    NoisyMeasurementError,
    measure_runner,
    measure_runners,
)
from nas.latency.progress import Progress, Silent
from nas.latency.runtimes import Runner, prepare, prepare_arch
from nas.latency.target import Fingerprint, Target, fingerprint
from nas.latency.units import Unit, cheapest
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace, choices

__all__ = [
    "COLD_FROM_BYTES",
    "MODEL_GROUP",
    "UNIT_GROUP",
    "Figure",
    "Timed",
    "anchors_for",
    "eps_of",
    "figures_of",
    "interleaved",
    "key_of",
    "measure_paced",
    "measure_settled",
    "measure_unit",
    "measure_until",
    "measure_whole",
    "patiently",
    "record_of",
    "space_cold_bytes",
    "time_models",
]

#: Units and whole models are measured this many at a time, their windows interleaved:
#: one network's windows then fall seconds apart (nas.latency.measure), and a killed run
#: loses at most the group in flight.
UNIT_GROUP = 150
MODEL_GROUP = 40


@dataclass(frozen=True)
class Figure:
    """One table entry to measure: a unit, hot (``cold_bytes`` 0) or cold."""

    unit: Unit
    cold_bytes: int = 0

    @property
    def key(self) -> str:
        return cold_key(self.unit.key) if self.cold_bytes else self.unit.key

    def runner(self, target: Target, eps: float) -> Runner:
        module = self.unit.module(eps)
        copies = cold_copies(module, self.cold_bytes) if self.cold_bytes else 1
        return prepare(module, (target.batch, *self.unit.in_shape), target, copies=copies)


#: A space's units get cold figures only when its heaviest network holds more weights
#: than this. Networks of `tiny` (2.6 MB at most) keep their weights in the core's caches
#: through a pass and are predicted best from hot figures alone; `mobile`'s (7-96 MB) read
#: them from memory and need the cold ones (benchmarks/README.md, "Cold units: weights
#: out of cache"). Between the two, with room for caches smaller than this machine's.
COLD_FROM_BYTES = 4 << 20


def space_cold_bytes(space: SearchSpace, fp: Fingerprint) -> int:
    """What a cold figure of ``space``'s units holds in a table of ``fp``: the
    fingerprint's ``cold_bytes`` when a network of the space can spill the caches (see
    ``COLD_FROM_BYTES``), else 0: hot figures alone, the larger part of a build saved
    (benchmarks/README.md, "Where a first run's time went")."""
    if not fp.cold_bytes:
        return 0
    heaviest = -cheapest(space, lambda u: -4.0 * u.params)  # float32 weights
    return fp.cold_bytes if heaviest > COLD_FROM_BYTES else 0


def figures_of(units: Sequence[Unit], cold_bytes: int) -> list[Figure]:
    """The figures a table holds for ``units``: each unit hot, and cold too when
    ``cold_bytes`` (``space_cold_bytes``; hot and cold of a unit in one group: one
    moment)."""
    out = []
    for unit in units:
        out.append(Figure(unit))
        if cold_bytes:
            out.append(Figure(unit, cold_bytes))
    return out


def eps_of(space: SearchSpace) -> float:
    return float(choices(space).top["norm_eps"][0])


K = TypeVar("K")


@dataclass(frozen=True)
class Timed(Generic[K]):
    item: K
    result: Measurement | NoisyMeasurementError
    #: Seconds this item cost: preparation (build, ONNX export) and its own windows.
    cost_s: float
    #: The canary read just before the item's group (0.0: no reading).
    canary_ms: float


def interleaved(
    items: Sequence[K],
    runner: Callable[[K], Runner],
    target: Target,
    settings: MeasureSettings,
    group: int,
    canary: Canary,
    anchors: Anchors | None = None,
) -> Iterator[list[Timed[K]]]:
    """Measure ``items`` ``group`` at a time, windows interleaved within each group (and
    with the ``anchors``' windows, which pace every round); yields each group's results
    as soon as it is done (so they can be stored)."""
    key = key_of(target)
    pacing = anchors.pacing(target) if anchors is not None else None
    for start in range(0, len(items), group):
        part = items[start : start + group]
        reading = canary.read()
        runners, prep = [], []
        for item in part:
            t0 = time.perf_counter()
            runners.append(runner(item))
            prep.append(time.perf_counter() - t0)
        results = measure_runners(runners, settings, fingerprint_key=key, pacing=pacing)
        out = []
        for item, result, p in zip(part, results, prep, strict=True):
            m = result.best if isinstance(result, NoisyMeasurementError) else result
            out.append(Timed(item, result, p + (m.cost_s if m else 0.0), reading))
        del runners  # free the group's sessions before the next group is prepared
        yield out


def measure_whole(
    arch: Architecture, target: Target, settings: MeasureSettings | None = None
) -> tuple[Measurement, float]:
    """Whole-model latency in isolation, and the full cost in seconds (build, runtime
    preparation such as ONNX export, warm-up and samples)."""
    t0 = time.perf_counter()
    m = measure_runner(prepare_arch(arch, target), settings, fingerprint_key=key_of(target))
    return m, time.perf_counter() - t0


def measure_unit(figure: Figure, target: Target, eps: float) -> Measurement:
    """One unit's figure alone (windows back to back): what a prediction missing it waits
    for."""
    runner = figure.runner(target, eps)
    return measure_runner(runner, MeasureSettings.for_ops(), fingerprint_key=key_of(target))


def key_of(target: Target) -> str:
    return fingerprint(target).key


def record_of(space: SearchSpace, t: Timed[Architecture], **figure: str) -> ModelRecord:
    """The stored figure: at the anchors' reference speed (the measurement was paced);
    ``figure``: how it was taken, when not as a whole model's (ModelRecord.figure)."""
    assert isinstance(t.result, Measurement)
    a, m = t.item, t.result
    return ModelRecord(
        a.id, space.name, a.to_json(), m.ms, m.iqr_ms / m.speed, t.cost_s, t.canary_ms,
        speed=m.speed, **figure,
    )  # fmt: skip


def anchors_for(space: SearchSpace, fp: Fingerprint, table: LatencyTable) -> Anchors:
    """The space's anchors, with the reference figures the table holds for them (the
    first group timed sets and stores them)."""
    stored = table.models(fp.key, "anchor")

    def keep(figures: Mapping[str, float]) -> None:
        for a in anchors.archs:
            if a.id in figures:
                rec = ModelRecord(a.id, space.name, a.to_json(), figures[a.id], 0.0, 0.0)
                table.add_model(fp.key, "anchor", rec)

    anchors = Anchors.of(space, on_reference=keep)
    anchors.reference = {a.id: stored[a.id].ms for a in anchors.archs if a.id in stored}
    return anchors


def time_models(
    archs: list[Architecture],
    target: Target,
    progress: Progress,
    anchors: Anchors,
    settings: MeasureSettings | None = None,
) -> Iterator[Timed[Architecture]]:
    """Whole models in isolation, ``MODEL_GROUP`` at a time with interleaved windows, the
    anchors timed with every group (``settings``: a whole model's by default)."""
    canary = Canary(target)
    for group in interleaved(
        archs, lambda a: prepare_arch(a, target), target, settings or MeasureSettings(),
        MODEL_GROUP, canary, anchors,
    ):  # fmt: skip
        yield from group
        progress.advance(len(group))


def measure_models(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    purpose: str,
    archs: list[Architecture],
    progress: Progress,
    settings: MeasureSettings | None = None,
) -> dict[str, ModelRecord]:
    """Time the ``archs`` not yet on record for ``purpose`` and store them; returns what
    is on record. ``settings``: how, when not as a whole model (figures labelled so)."""
    figure = {} if settings is None else {"figure": settings.label}
    fp = fingerprint(target)
    done = table.models(fp.key, purpose, **figure)
    todo = [a for a in archs if a.id not in done]
    progress.start(f"measuring {purpose} models", len(todo))
    skipped = 0
    anchors = anchors_for(space, fp, table)
    for timed in time_models(todo, target, progress, anchors, settings) if todo else ():
        if not isinstance(timed.result, Measurement):
            skipped += 1
            continue
        rec = record_of(space, timed, **figure)
        table.add_model(fp.key, purpose, rec)
        done[rec.arch_id] = rec
    if skipped:
        progress.note(
            f"skipped {skipped} {purpose} model(s): the machine was too busy to time them"
        )
    return done


def measure_until(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    purpose: str,
    archs: list[Architecture],
    progress: Progress,
    enough: Callable[[dict[str, ModelRecord]], bool],
    attempts: int = 3,
    settings: MeasureSettings | None = None,
) -> dict[str, ModelRecord]:
    """``measure_models``, run again a growing pause apart (2 s, 4 s) while what is on
    record is not ``enough`` and some of ``archs`` are not: models the machine was too
    busy for get another chance once a passing burst of load has ended."""
    for attempt in range(attempts):
        done = measure_models(space, target, table, purpose, archs, progress, settings)
        untimed = any(a.id not in done for a in archs)
        if enough(done) or not untimed or attempt == attempts - 1:
            return done
        time.sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")  # attempts >= 1


def measure_paced(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    archs: Sequence[Architecture],
    attempts: int = 3,
) -> dict[str, Measurement]:
    """arch id -> figure of whole models timed together beside the space's anchors, at
    the table's reference speed, the speed its calibration models are stated at: a
    machine slowed for a few seconds (a local cluster's workers starting or stopping
    beside the measurement) moves neither the figures nor their agreement with the
    predictions. Models it stays too busy for get another try a growing pause later
    (2 s, 4 s), then are left out. A table of another machine lends no reference: the
    anchors' first round sets one, unstored."""
    fp = fingerprint(target)
    here = any(f.key == fp.key for f in table.fingerprints())
    anchors = anchors_for(space, fp, table) if here else Anchors.of(space)
    done: dict[str, Measurement] = {}
    todo = list({a.id: a for a in archs}.values())
    for attempt in range(attempts):
        for timed in time_models(todo, target, Silent(), anchors):
            if isinstance(timed.result, Measurement):
                done[timed.item.id] = timed.result
        todo = [a for a in todo if a.id not in done]
        if not todo or attempt == attempts - 1:
            break
        time.sleep(2.0 * (attempt + 1))
    return done


def measure_settled(
    arch: Architecture, target: Target, attempts: int = 3
) -> tuple[Measurement, float] | None:
    """``measure_whole`` retried a few seconds apart while the machine is too busy for a
    trustworthy figure; None when it stays busy (a skipped sample, never a noisy one)."""
    try:
        return patiently(lambda: measure_whole(arch, target), attempts)
    except NoisyMeasurementError:
        return None


T = TypeVar("T")


def patiently(measure: Callable[[], T], attempts: int = 3) -> T:
    """``measure()``, tried again after a pause (0.5 s, 1 s, ...) while it finds the
    machine too busy; the last NoisyMeasurementError propagates."""
    for attempt in range(attempts - 1):
        try:
            return measure()
        except NoisyMeasurementError:
            time.sleep(0.5 * (attempt + 1))
    return measure()
