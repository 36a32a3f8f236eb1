"""Validating a calibrated table: predictions checked against fresh whole models.

Fresh means never used for calibration. Each model is timed in several passes and some
again at the end, so the report can set the prediction's errors against how well the
machine repeats itself. ``stored_predictions`` reads the same figures back for the report.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from nas.core.errors import NasError
from nas.core.stats import kendall_tau
from nas.latency.anchors import Anchors, fresh_archs
from nas.latency.calibration import calibration_models, fit
from nas.latency.loading import load_predictor, resolve_fingerprint
from nas.latency.lut import LatencyTable, ModelRecord
from nas.latency.measure import Measurement
from nas.latency.predictor import Predictor
from nas.latency.progress import Progress, Silent
from nas.latency.target import Target, fingerprint
from nas.latency.timing import anchors_for, eps_of, measure_until, time_models
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace

__all__ = [
    "MAX_VALIDATION_PASSES",
    "VALIDATION_PASSES",
    "VALIDATION_STREAM",
    "ValidationReport",
    "drift",
    "pass_purpose",
    "passes_combined",
    "repeatability",
    "stored_predictions",
    "validate",
]

VALIDATION_STREAM = 2
#: Times a validation measures each model, in passes over the whole set (the second in
#: reverse order, so that each model's two figures are minutes apart): its figure is their
#: geometric mean, so the prediction is checked against the model's latency rather than
#: against the moment it was timed at (benchmarks/README.md, "Two passes").
VALIDATION_PASSES = 2
MAX_VALIDATION_PASSES = 3


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


def drift(canaries: np.ndarray, reference: float) -> float:
    readings = canaries[canaries > 0]
    return float(np.median(readings) / reference) if reference > 0 and len(readings) else 0.0


def stored_predictions(
    table: LatencyTable, target: Target, space: str, *, fingerprint_key: str | None = None
) -> dict[str, list[tuple[Architecture, float, float]]]:
    """The space's stored whole-model measurements, per purpose ("calibration",
    "validation"), as (architecture, predicted ms, measured ms), predicted with the table's
    current calibration: what `nas latency report` plots."""
    fp = resolve_fingerprint(table, target, fingerprint_key)
    predictor = load_predictor(table, target, space=space, fingerprint_key=fp.key)
    stored = {
        "calibration": calibration_models(table, fp.key),
        "validation": passes_combined(table, fp.key, table.models(fp.key, "validation")),
    }
    out = {}
    for purpose, of_fp in stored.items():
        records = [r for r in of_fp.values() if r.space == space]
        archs = [Architecture.from_json(r.arch_json) for r in records]
        predicted = predictor.predict_many(archs)
        out[purpose] = [(a, p, r.ms) for a, p, r in zip(archs, predicted, records, strict=True)]
    return out


def pass_purpose(k: int) -> str:
    """Where pass ``k`` (0-based) of a validation stores its figures."""
    return "validation" if k == 0 else f"validation pass {k + 1}"


def passes_combined(
    table: LatencyTable,
    fp_key: str,
    first: Mapping[str, ModelRecord],
    passes: int = MAX_VALIDATION_PASSES,
) -> dict[str, ModelRecord]:
    """The validation records of ``first`` with each figure the geometric mean of those
    of the first ``passes`` passes that timed the model (one: its figure as it is)."""
    later = [table.models(fp_key, pass_purpose(k)) for k in range(1, passes)]
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
    progress = progress or Silent()
    if not 1 <= passes <= MAX_VALIDATION_PASSES:
        raise NasError(f"must be 1 to {MAX_VALIDATION_PASSES}, got {passes}", field="passes")
    fp = fingerprint(target)
    if fresh:
        for k in range(MAX_VALIDATION_PASSES):
            table.forget_models(fp.key, pass_purpose(k), space.name)
    if space.name not in table.calibrations(fp.key):
        raise NasError(
            f"no calibration for space {space.name!r} yet: run `nas latency build` first",
            field="calibration",
        )
    archs, records = _timed(space, target, table, n, seed, passes, progress)
    # Fill any unit the table lacks first, so the timed pass below is pure prediction.
    eps = eps_of(space)
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
    speeds = np.asarray([records[a.id].speed for a in archs])
    unanchored = _unanchored(space, target, table, predictor, archs, meas * speeds)
    twice, second = repeatability(archs[:repeat], target, progress, anchors_for(space, fp, table))
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
        drift=drift(canaries, table.reference(fp.key)),
        repeat_n=len(again),
        repeat_within_5=float(np.mean(again <= 0.05)) if len(again) else None,
        repeat_within_10=float(np.mean(again <= 0.10)) if len(again) else None,
        repeat_kendall_tau=kendall_tau(meas[twice], second) if ranked else None,
        repeat_prediction_tau=kendall_tau(pred[twice], meas[twice]) if ranked else None,
        speed_low=float(speeds.min()),
        speed_high=float(speeds.max()),
        passes=passes,
        **unanchored,
    )
    table.add_validation(fp.key, space.name, report.to_dict())
    return report


def _timed(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    n: int,
    seed: int,
    passes: int,
    progress: Progress,
) -> tuple[list[Architecture], dict[str, ModelRecord]]:
    """The fresh models timed ``passes`` times (those the machine was too busy for left
    out) and their records, each figure the geometric mean of its passes'."""
    fp = fingerprint(target)
    calibration_ids = set(table.models(fp.key, "calibration", figure=None))  # taken any way
    archs = list(fresh_archs(space, seed, VALIDATION_STREAM, n, calibration_ids))
    ids = {a.id for a in archs}
    records = measure_until(
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
        measure_until(
            space, target, table, pass_purpose(k), archs[::-1] if k % 2 else archs, progress,
            lambda done: True,  # a model the machine stays too busy for keeps fewer figures
        )  # fmt: skip
    return archs, passes_combined(table, fp.key, {a.id: records[a.id] for a in archs}, passes)


def _unanchored(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    predictor: Predictor,
    archs: list[Architecture],
    as_measured: np.ndarray,
) -> dict[str, float | None]:
    """The same check without the anchors: figures as measured, calibration refitted on
    the calibration models' figures as measured (None when they cannot be refitted)."""
    fp = fingerprint(target)
    calibrated = calibration_models(table, fp.key).values()
    try:
        plain = fit(space, target, table, [r for r in calibrated if r.space == space.name],
                    as_measured=True)  # fmt: skip
    except NasError:  # a calibration of figures taken another way: nothing to refit
        return {"unanchored_within_10": None, "unanchored_kendall_tau": None}
    plain_pred = np.asarray([plain.apply(predictor.sums(a)) for a in archs])
    return {
        "unanchored_within_10": float(
            np.mean(np.abs(plain_pred - as_measured) <= 0.10 * as_measured)
        ),
        "unanchored_kendall_tau": kendall_tau(plain_pred, as_measured),
    }


def repeatability(
    archs: list[Architecture], target: Target, progress: Progress, anchors: Anchors
) -> tuple[np.ndarray, np.ndarray]:
    """A second measurement (taken as the first was, at the anchors' reference speed) of
    ``archs``: the indices of those timed again (models the machine stays too busy for
    are left out), and their figures."""
    progress.start("measuring models again", len(archs))
    index = {a.id: i for i, a in enumerate(archs)}
    timed = [
        (index[t.item.id], t.result.ms)
        for t in time_models(archs, target, progress, anchors)
        if isinstance(t.result, Measurement)
    ]
    return np.asarray([i for i, _ in timed], dtype=int), np.asarray([ms for _, ms in timed])
