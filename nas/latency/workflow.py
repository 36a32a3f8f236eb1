"""Build, calibrate and validate a latency table; load a predictor from one.

What the ``nas latency`` commands run. Each step stores what it measures as it goes,
so any of them can be killed and run again to continue.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from nas.core.errors import NasError
from nas.latency.anchors import Anchors, fresh_archs
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
from nas.latency.predictor import Calibration, Predictor, fit_calibration, kendall_tau
from nas.latency.runtimes import Runner, check_available, prepare, prepare_arch
from nas.latency.target import Fingerprint, Target, fingerprint
from nas.latency.units import Unit, space_units
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace, choices

__all__ = [
    "BuildReport",
    "Progress",
    "ValidationReport",
    "build_table",
    "calibrate",
    "load_predictor",
    "measure_whole",
    "resolve_fingerprint",
    "validate",
]

CALIBRATION_STREAM = 1
VALIDATION_STREAM = 2
#: Units and whole models are measured this many at a time, their windows interleaved:
#: one network's windows then fall seconds apart (nas.latency.measure), and a killed run
#: loses at most the group in flight.
UNIT_GROUP = 150
MODEL_GROUP = 40
#: Whole models a calibration measures by default: its fit has up to 8 unknowns, and on
#: onnxruntime `mobile` @ 64 px 147 models validated at 97.7% within +-10% where 83 gave
#: 94.3% (benchmarks/README.md, "Pacing by round").
CALIBRATION_MODELS = 150
#: Times a validation measures each model, in passes over the whole set (the second in
#: reverse order, so that each model's two figures are minutes apart): its figure is their
#: geometric mean. On onnxruntime `mobile` @ 64 px two figures of a network taken minutes
#: apart agreed within +-10% for only 92% of networks on a busy day, and the mean of two
#: took the same validation from 92.9% to 96.1% within +-10% (benchmarks/README.md,
#: "Two passes").
VALIDATION_PASSES = 2
MAX_VALIDATION_PASSES = 3
#: A calibration fits the optional terms' coefficients (cold figures, inputs/outputs,
#: weights read and its square: up to 7 unknowns in all) only from this many models on.
OPTIONAL_TERMS_FROM = 12


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...


class _Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class BuildReport:
    """``figures`` counts table entries: per unit its hot and, on eager CPU, its cold
    figure (nas.latency.cold); ``already``, ``measured`` and ``noisy`` count figures."""

    fingerprint: str
    units: int
    figures: int
    already: int
    measured: int
    noisy: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class ValidationReport:
    """Predicted against measured latency on fresh architectures."""

    space: str
    n: int
    within_5: float
    within_10: float
    mape: float
    kendall_tau: float
    #: Mean cost of one prediction (each architecture predicted once) and median cost of one
    #: whole-model measurement (build and runtime preparation included).
    predict_us: float
    measure_s: float
    calibration: dict[str, float]
    #: Canary speed during validation over its speed at the first build (1: no drift).
    drift: float = 0.0
    #: The measurement against itself: ``repeat_n`` of the models timed again after the
    #: others, and the share whose second figure is within 5% / 10% of the first. No
    #: predictor can be checked more tightly than the machine repeats itself.
    repeat_n: int = 0
    repeat_within_5: float | None = None
    repeat_within_10: float | None = None
    #: Kendall tau of those models' second figures against their first (the ranking the
    #: machine itself reproduces), and of the predictions against the first figures of the
    #: same models (the validation's tau, read on the same few): None with under 2.
    repeat_kendall_tau: float | None = None
    repeat_prediction_tau: float | None = None
    #: The slowest and fastest the machine ran against the space's anchors while the
    #: models were timed (1: as fast as when the anchors' reference was set).
    speed_low: float = 1.0
    speed_high: float = 1.0
    #: The check without the anchors (figures as measured, calibration refitted on them).
    unanchored_within_10: float | None = None
    unanchored_kendall_tau: float | None = None
    #: Passes over the models (a model's figure: the geometric mean of its passes').
    passes: int = 1

    @property
    def speedup(self) -> float:
        return self.measure_s / (self.predict_us * 1e-6)

    def to_dict(self) -> dict[str, float | int | str | dict[str, float] | None]:
        return {**asdict(self), "speedup": self.speedup}


def resolve_fingerprint(table: LatencyTable, target: Target, key: str | None = None) -> Fingerprint:
    """The table to use for ``target``: this machine's if present, else the one table built
    for the same setting elsewhere (a table that travelled), else a clear error."""
    known = table.fingerprints()
    if key is not None:
        for fp in known:
            if fp.key == key:
                return fp
        raise NasError(
            f"no latency table with fingerprint {key!r}", field="fingerprint", source=table.url
        )
    here = fingerprint(target)
    if any(fp.key == here.key for fp in known):
        return here
    setting = ("target", "batch", "dtype", "threads", "amp", "channels_last", "statistic")
    same = [fp for fp in known if all(getattr(fp, a) == getattr(here, a) for a in setting)]
    if len(same) == 1:
        return same[0]
    if not known:
        raise NasError(
            "the database holds no latency table yet: run `nas latency build` first",
            field="db",
            source=table.url,
        )
    listing = "; ".join(f"{fp.key}: {fp.describe()}" for fp in known)
    raise NasError(
        f"no latency table for {here.describe()} (this machine); the database holds {listing}. "
        "Pass --fingerprint KEY to use another machine's table",
        field="target",
        source=table.url,
    )


def build_table(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    *,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
    retry_passes: int = 4,
) -> BuildReport:
    """Measure every unit of ``space`` the table lacks for this machine and ``target``."""
    check_available(target)
    progress = progress or _Silent()
    start = time.perf_counter()
    fp = fingerprint(target)
    table.register(fp)
    units = space_units(space)
    have = table.entries(fp.key)
    wanted = _figures(units, fp)
    missing = [f for f in wanted if f.key not in have]
    progress.note(
        f"{len(units)} units in space {space.name} ({len(wanted)} figures): "
        f"{len(wanted) - len(missing)} already in the table, measuring {len(missing)} "
        f"({fp.describe()})"
    )
    progress.start("measuring units", len(missing))
    eps = _eps(space)
    canary = Canary(target) if missing else None
    if canary is not None:
        table.set_reference(fp.key, canary.read())

    def measure(todo: list[_Figure], advance: bool) -> list[_Figure]:
        """Measure and store; returns the figures the machine was too busy for."""
        if not todo:
            return []
        assert canary is not None
        noisy: list[_Figure] = []
        group_settings = settings or MeasureSettings.for_ops()
        for group in _interleaved(
            todo, lambda f: f.runner(target, eps), target, group_settings, UNIT_GROUP, canary
        ):
            for t in group:
                if isinstance(t.result, NoisyMeasurementError):
                    noisy.append(t.item)
                else:
                    table.add_entry(fp.key, t.item.key, t.result, t.canary_ms)
            if advance:
                progress.advance(len(group))
        return noisy

    noisy = measure(missing, advance=True)
    # A few more passes, a growing pause apart, for units the machine was too busy for
    # (a burst of load passes; a machine that stays busy gets them reported, not stored).
    for attempt in range(retry_passes):
        if not noisy:
            break
        time.sleep(0.5 * attempt)
        noisy = measure(noisy, advance=False)
    return BuildReport(
        fp.key, len(units), len(wanted), len(wanted) - len(missing), len(missing) - len(noisy),
        tuple(f.key for f in noisy), time.perf_counter() - start,
    )  # fmt: skip


@dataclass(frozen=True)
class _Figure:
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


def _figures(units: Sequence[Unit], fp: Fingerprint) -> list[_Figure]:
    """The figures a table of ``fp`` holds for ``units``: each unit hot, and cold too when
    the fingerprint has cold figures (hot and cold of a unit in one group: one moment)."""
    out = []
    for unit in units:
        out.append(_Figure(unit))
        if fp.cold_bytes:
            out.append(_Figure(unit, fp.cold_bytes))
    return out


def _drift(canaries: np.ndarray, reference: float) -> float:
    readings = canaries[canaries > 0]
    return float(np.median(readings) / reference) if reference > 0 and len(readings) else 0.0


def _eps(space: SearchSpace) -> float:
    return float(choices(space).top["norm_eps"][0])


K = TypeVar("K")


@dataclass(frozen=True)
class _Timed(Generic[K]):
    item: K
    result: Measurement | NoisyMeasurementError
    #: Seconds this item cost: preparation (build, ONNX export) and its own windows.
    cost_s: float
    #: The canary read just before the item's group (0.0: no reading).
    canary_ms: float


def _interleaved(
    items: Sequence[K],
    runner: Callable[[K], Runner],
    target: Target,
    settings: MeasureSettings,
    group: int,
    canary: Canary,
    anchors: Anchors | None = None,
) -> Iterator[list[_Timed[K]]]:
    """Measure ``items`` ``group`` at a time, windows interleaved within each group (and
    with the ``anchors``' windows, which pace every round); yields each group's results
    as soon as it is done (so they can be stored)."""
    key = _key(target)
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
            out.append(_Timed(item, result, p + (m.cost_s if m else 0.0), reading))
        del runners  # free the group's sessions before the next group is prepared
        yield out


def measure_whole(
    arch: Architecture, target: Target, settings: MeasureSettings | None = None
) -> tuple[Measurement, float]:
    """Whole-model latency in isolation, and the full cost in seconds (build, runtime
    preparation such as ONNX export, warm-up and samples)."""
    t0 = time.perf_counter()
    m = measure_runner(prepare_arch(arch, target), settings, fingerprint_key=_key(target))
    return m, time.perf_counter() - t0


def _measure_unit(figure: _Figure, target: Target, eps: float) -> Measurement:
    """One unit's figure alone (windows back to back): what a prediction missing it waits
    for."""
    runner = figure.runner(target, eps)
    return measure_runner(runner, MeasureSettings.for_ops(), fingerprint_key=_key(target))


def _key(target: Target) -> str:
    return fingerprint(target).key


def _record(space: SearchSpace, t: _Timed[Architecture]) -> ModelRecord:
    """The stored figure: at the anchors' reference speed (the measurement was paced)."""
    assert isinstance(t.result, Measurement)
    a, m = t.item, t.result
    return ModelRecord(
        a.id, space.name, a.to_json(), m.ms, m.iqr_ms / m.speed, t.cost_s, t.canary_ms,
        speed=m.speed,
    )  # fmt: skip


def _anchors(space: SearchSpace, fp: Fingerprint, table: LatencyTable) -> Anchors:
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


def _time_models(
    archs: list[Architecture], target: Target, progress: Progress, anchors: Anchors
) -> Iterator[_Timed[Architecture]]:
    """Whole models in isolation, ``MODEL_GROUP`` at a time with interleaved windows, the
    anchors timed with every group."""
    canary = Canary(target)
    for group in _interleaved(
        archs, lambda a: prepare_arch(a, target), target, MeasureSettings(), MODEL_GROUP,
        canary, anchors,
    ):  # fmt: skip
        yield from group
        progress.advance(len(group))


def _measure_models(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    purpose: str,
    archs: list[Architecture],
    progress: Progress,
) -> dict[str, ModelRecord]:
    fp = fingerprint(target)
    done = table.models(fp.key, purpose)
    todo = [a for a in archs if a.id not in done]
    progress.start(f"measuring {purpose} models", len(todo))
    skipped = 0
    anchors = _anchors(space, fp, table)
    for timed in _time_models(todo, target, progress, anchors) if todo else ():
        if not isinstance(timed.result, Measurement):
            skipped += 1
            continue
        rec = _record(space, timed)
        table.add_model(fp.key, purpose, rec)
        done[rec.arch_id] = rec
    if skipped:
        progress.note(
            f"skipped {skipped} {purpose} model(s): the machine was too busy to time them"
        )
    return done


def _measure_until(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    purpose: str,
    archs: list[Architecture],
    progress: Progress,
    enough: Callable[[dict[str, ModelRecord]], bool],
    attempts: int = 3,
) -> dict[str, ModelRecord]:
    """``_measure_models``, run again a growing pause apart (2 s, 4 s) while what is on
    record is not ``enough`` and some of ``archs`` are not: models the machine was too
    busy for get another chance once a passing burst of load has ended."""
    for attempt in range(attempts):
        done = _measure_models(space, target, table, purpose, archs, progress)
        untimed = any(a.id not in done for a in archs)
        if enough(done) or not untimed or attempt == attempts - 1:
            return done
        time.sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")  # attempts >= 1


def measure_settled(
    arch: Architecture, target: Target, attempts: int = 3
) -> tuple[Measurement, float] | None:
    """``measure_whole`` retried a few seconds apart while the machine is too busy for a
    trustworthy figure; None when it stays busy (a skipped sample, never a noisy one)."""
    try:
        return _patiently(lambda: measure_whole(arch, target), attempts)
    except NoisyMeasurementError:
        return None


T = TypeVar("T")


def _patiently(measure: Callable[[], T], attempts: int = 3) -> T:
    """``measure()``, tried again after a pause (0.5 s, 1 s, ...) while it finds the
    machine too busy; the last NoisyMeasurementError propagates."""
    for attempt in range(attempts - 1):
        try:
            return measure()
        except NoisyMeasurementError:
            time.sleep(0.5 * (attempt + 1))
    return measure()


def calibrate(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    *,
    n: int = CALIBRATION_MODELS,
    seed: int = 0,
    fresh: bool = False,
    progress: Progress | None = None,
) -> Calibration:
    """Measure ``n`` whole models of ``space`` and fit its correction for this fingerprint
    (on every calibration model of this space the table has).

    ``fresh`` drops the stored calibration models first and measures new ones: the table
    is slow to build and lasts, the calibration takes seconds and is best refreshed
    shortly before it is used (a machine's speed drifts over hours).
    """
    progress = progress or _Silent()
    fp = fingerprint(target)
    if fresh:
        table.forget_models(fp.key, "calibration", space.name)
    archs = list(fresh_archs(space, seed, CALIBRATION_STREAM, n, set()))
    # The fit has 3 unknowns and wants 5 models; ask for half of the models sampled (a
    # tiny space has few). It uses every calibration model of the space on record.
    need = min(len(archs), max(5, len(archs) // 2))

    def of_space(done: dict[str, ModelRecord]) -> dict[str, ModelRecord]:
        return {k: r for k, r in done.items() if r.space == space.name}

    records = of_space(
        _measure_until(
            space, target, table, "calibration", archs, progress,
            lambda done: len(of_space(done)) >= need,
        )
    )  # fmt: skip
    if len(records) < need:
        raise NasError(
            f"only {len(records)} calibration models could be timed (need {need}): the "
            "machine is too busy; run again when quieter",
            field="latency",
        )
    cal = _fit(space, target, table, records.values())
    table.save_calibration(fp.key, space.name, cal.to_dict())
    return cal


def _fit(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    records: Iterable[ModelRecord],
    *,
    as_measured: bool = False,
) -> Calibration:
    """The calibration of the table's sums (units it lacks are measured) on ``records``:
    their figures at the anchors' reference speed, or ``as_measured``."""
    fp = fingerprint(target)
    raw = Predictor(
        table.entries(fp.key),
        cold=bool(fp.cold_bytes),
        measure_missing=_filler(table, fp, target, _eps(space)),
    )
    records = list(records)
    sums = [raw.sums(Architecture.from_json(rec.arch_json)) for rec in records]
    measured = [rec.ms * rec.speed if as_measured else rec.ms for rec in records]
    enough = len(measured) >= OPTIONAL_TERMS_FROM
    return fit_calibration(
        sums, measured, cold=bool(fp.cold_bytes) and enough, io=enough, weights=enough
    )


def _filler(
    table: LatencyTable, fp: Fingerprint, target: Target, eps: float
) -> Callable[[Unit, bool], float]:
    """Measure a unit's figure (hot or cold) the table lacks, store it, return it.

    A search must not die because the machine is busy (its own trials train beside
    it): when the unit stays too noisy, its least noisy figure serves this prediction
    but is not stored, so the table never holds a noisy entry and a later call measures
    it again."""

    def fill(unit: Unit, cold: bool) -> float:
        figure = _Figure(unit, fp.cold_bytes if cold else 0)
        try:
            m = _patiently(lambda: _measure_unit(figure, target, eps), attempts=2)
        except NoisyMeasurementError as err:
            assert err.best is not None
            return err.best.ms
        table.add_entry(fp.key, figure.key, m)
        return m.ms

    return fill


def load_predictor(
    table: LatencyTable,
    target: Target,
    *,
    space: str | None = None,
    fingerprint_key: str | None = None,
    measure_missing: bool = False,
    norm_eps: float = 1e-5,
) -> Predictor:
    """A predictor for ``target`` from the table (see ``resolve_fingerprint``), with the
    calibration fitted for ``space`` (optional when the table has exactly one).

    ``measure_missing`` fills missing units by measuring them here, which is only
    possible when the table is this machine's.
    """
    fp = resolve_fingerprint(table, target, fingerprint_key)
    fitted = table.calibrations(fp.key)
    if not fitted:
        raise NasError(
            f"the latency table {fp.key} has no calibration yet: run `nas latency build`",
            field="calibration",
            source=table.url,
        )
    if space is None and len(fitted) == 1:
        space = next(iter(fitted))
    if space not in fitted:
        raise NasError(
            f"no calibration for space {space!r} in table {fp.key} (calibrated: "
            f"{', '.join(sorted(fitted))}); run `nas latency build --space ...` for it",
            field="space",
        )
    here = fingerprint(target).key
    filler = None
    if measure_missing:
        if fp.key != here:
            raise NasError(
                f"cannot measure missing units: the table {fp.key} was built on another machine "
                f"({fp.describe()})",
                field="measure_missing",
            )
        filler = _filler(table, fp, target, norm_eps)

    return Predictor(
        table.entries(fp.key),
        Calibration(**fitted[space]),
        cold=bool(fp.cold_bytes),
        measure_missing=filler,
        description=fp.describe(),
    )


def stored_predictions(
    table: LatencyTable, target: Target, space: str, *, fingerprint_key: str | None = None
) -> dict[str, list[tuple[Architecture, float, float]]]:
    """The space's stored whole-model measurements, per purpose ("calibration",
    "validation"), as (architecture, predicted ms, measured ms), predicted with the table's
    current calibration: what `nas latency report` plots."""
    fp = resolve_fingerprint(table, target, fingerprint_key)
    predictor = load_predictor(table, target, space=space, fingerprint_key=fp.key)
    out = {}
    for purpose in ("calibration", "validation"):
        records = [r for r in table.models(fp.key, purpose).values() if r.space == space]
        if purpose == "validation":
            records = list(
                _passes_combined(table, fp.key, {r.arch_id: r for r in records}).values()
            )
        archs = [Architecture.from_json(r.arch_json) for r in records]
        predicted = predictor.predict_many(archs)
        out[purpose] = [(a, p, r.ms) for a, p, r in zip(archs, predicted, records, strict=True)]
    return out


def _pass_purpose(k: int) -> str:
    """Where pass ``k`` (0-based) of a validation stores its figures."""
    return "validation" if k == 0 else f"validation pass {k + 1}"


def _passes_combined(
    table: LatencyTable,
    fp_key: str,
    first: Mapping[str, ModelRecord],
    passes: int = MAX_VALIDATION_PASSES,
) -> dict[str, ModelRecord]:
    """The validation records of ``first`` with each figure the geometric mean of those
    of the first ``passes`` passes that timed the model (one: its figure as it is)."""
    later = [table.models(fp_key, _pass_purpose(k)) for k in range(1, passes)]
    out = {}
    for arch_id, rec in first.items():
        timed = [rec] + [p[arch_id] for p in later if arch_id in p]
        out[arch_id] = rec if len(timed) == 1 else dataclasses.replace(
            rec,
            ms=statistics.geometric_mean(r.ms for r in timed),
            speed=statistics.geometric_mean(r.speed for r in timed),
        )  # fmt: skip
    return out


def validate(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    *,
    n: int = 200,
    seed: int = 0,
    fresh: bool = False,
    repeat: int = 0,
    passes: int = VALIDATION_PASSES,
    progress: Progress | None = None,
) -> ValidationReport:
    """Predict and measure ``n`` fresh architectures (never those used for calibration).

    Each model is measured ``passes`` times, in passes
    over the whole set (each pass in the reverse order of the one before), and its figure
    is the geometric mean: what the prediction is checked against is then the model's
    latency more than the moment it was timed at. ``fresh`` measures them again instead
    of reusing stored measurements. ``repeat`` times that many of them once more, after
    all the others: the noise floor the prediction errors are read against.
    """
    progress = progress or _Silent()
    if not 1 <= passes <= MAX_VALIDATION_PASSES:
        raise NasError(f"must be 1 to {MAX_VALIDATION_PASSES}, got {passes}", field="passes")
    fp = fingerprint(target)
    if fresh:
        for k in range(MAX_VALIDATION_PASSES):
            table.forget_models(fp.key, _pass_purpose(k), space.name)
    if space.name not in table.calibrations(fp.key):
        raise NasError(
            f"no calibration for space {space.name!r} yet: run `nas latency build` first",
            field="calibration",
        )
    calibration_ids = set(table.models(fp.key, "calibration", figure=None))  # taken any way
    archs = list(fresh_archs(space, seed, VALIDATION_STREAM, n, calibration_ids))
    ids = {a.id for a in archs}
    records = _measure_until(
        space, target, table, "validation", archs, progress,
        lambda done: len(ids & done.keys()) >= 2,  # the least that validation can judge
    )  # fmt: skip
    archs = [a for a in archs if a.id in records]  # n counts the models actually timed
    if len(archs) < 2:
        raise NasError(
            f"only {len(archs)} fresh architecture(s) of {space.name} could be timed (need 2): "
            "the space has few beyond the calibration models, or the machine was too busy",
            field="n",
        )
    for k in range(1, passes):
        _measure_until(
            space, target, table, _pass_purpose(k), archs[::-1] if k % 2 else archs, progress,
            lambda done: True,  # a model the machine stays too busy for keeps fewer figures
        )  # fmt: skip
    records = _passes_combined(table, fp.key, {a.id: records[a.id] for a in archs}, passes)
    # Fill any unit the table lacks first, so the timed pass below is pure prediction.
    eps = _eps(space)
    load_predictor(
        table, target, space=space.name, measure_missing=True, norm_eps=eps
    ).predict_many(archs)
    predictor = load_predictor(table, target, space=space.name)
    t0 = time.perf_counter()
    predicted = predictor.predict_many(archs)  # each architecture once
    per_prediction = (time.perf_counter() - t0) / len(archs)
    meas = np.asarray([records[a.id].ms for a in archs])
    canaries = np.asarray([records[a.id].canary_ms for a in archs])
    costs = [records[a.id].cost_s for a in archs]
    pred = np.asarray(predicted)
    err = np.abs(pred - meas) / meas
    # The same check without the anchors: figures as measured, calibration refitted on
    # the calibration models' figures as measured (when there are enough of them).
    speeds = np.asarray([records[a.id].speed for a in archs])
    as_measured = meas * speeds
    calibrated = table.models(fp.key, "calibration").values()
    try:
        plain = _fit(space, target, table, [r for r in calibrated if r.space == space.name],
                     as_measured=True)  # fmt: skip
    except NasError:  # a calibration of figures taken another way: nothing to refit
        plain_pred = None
    else:
        plain_pred = np.asarray([plain.apply(predictor.sums(a)) for a in archs])
    anchors = _anchors(space, fp, table)
    twice, second = _repeatability(archs[:repeat], target, progress, anchors)
    again = np.abs(second - meas[twice]) / meas[twice]
    ranked = len(twice) >= 2
    report = ValidationReport(
        space=space.name,
        n=len(archs),
        within_5=float(np.mean(err <= 0.05)),
        within_10=float(np.mean(err <= 0.10)),
        mape=float(np.mean(err)),
        kendall_tau=float(kendall_tau(pred, meas)),
        predict_us=per_prediction * 1e6,
        measure_s=statistics.median(costs),
        calibration=predictor.calibration.to_dict(),
        drift=_drift(canaries, table.reference(fp.key)),
        repeat_n=len(again),
        repeat_within_5=float(np.mean(again <= 0.05)) if len(again) else None,
        repeat_within_10=float(np.mean(again <= 0.10)) if len(again) else None,
        repeat_kendall_tau=kendall_tau(meas[twice], second) if ranked else None,
        repeat_prediction_tau=kendall_tau(pred[twice], meas[twice]) if ranked else None,
        speed_low=float(speeds.min()),
        speed_high=float(speeds.max()),
        unanchored_within_10=(
            None if plain_pred is None
            else float(np.mean(np.abs(plain_pred - as_measured) <= 0.10 * as_measured))
        ),
        unanchored_kendall_tau=(
            None if plain_pred is None else kendall_tau(plain_pred, as_measured)
        ),
        passes=passes,
    )  # fmt: skip
    table.add_validation(fp.key, space.name, report.to_dict())
    return report


def _repeatability(
    archs: list[Architecture], target: Target, progress: Progress, anchors: Anchors
) -> tuple[np.ndarray, np.ndarray]:
    """A second measurement (taken as the first was, at the anchors' reference speed) of
    ``archs``: the indices of those timed again (models the machine stays too busy for
    are left out), and their figures."""
    progress.start("measuring models again", len(archs))
    index = {a.id: i for i, a in enumerate(archs)}
    timed = [
        (index[t.item.id], t.result.ms)
        for t in _time_models(archs, target, progress, anchors)
        if isinstance(t.result, Measurement)
    ]
    return np.asarray([i for i, _ in timed], dtype=int), np.asarray([ms for _, ms in timed])
