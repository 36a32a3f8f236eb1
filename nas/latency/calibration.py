"""Calibrating a table: whole models measured and a per-space correction fitted.

The fit maps a table's per-unit sums to whole-model latency, from whole models of the
space timed here. It takes seconds and is best refreshed shortly before use (a machine's
speed drifts over hours), while the table lasts.
"""

from __future__ import annotations

from collections.abc import Iterable

from nas.core.errors import NasError
from nas.latency.anchors import fresh_archs
from nas.latency.loading import unit_filler
from nas.latency.lut import LatencyTable, ModelRecord
from nas.latency.measure import MeasureSettings
from nas.latency.predictor import Calibration, Predictor, fit_calibration
from nas.latency.progress import Progress, Silent
from nas.latency.target import Target, fingerprint
from nas.latency.timing import eps_of, measure_until, space_cold_bytes
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace

__all__ = [
    "CALIBRATION_MODELS",
    "CALIBRATION_SETTINGS",
    "CALIBRATION_STREAM",
    "OPTIONAL_TERMS_FROM",
    "calibrate",
    "calibration_models",
    "fit",
]

CALIBRATION_STREAM = 1
#: Whole models a calibration measures by default: its fit has up to 8 unknowns, and
#: memory-bound spaces (onnxruntime `mobile`) validate markedly better with about 150 than
#: with about 80 (benchmarks/README.md, "Pacing by round").
CALIBRATION_MODELS = 150
#: How a calibration model is timed (and its figure labelled in the table).
CALIBRATION_SETTINGS = MeasureSettings.for_calibration()
#: A calibration fits the optional terms' coefficients (cold figures, inputs/outputs,
#: weights read and its square: up to 7 unknowns in all) only from this many models on.
OPTIONAL_TERMS_FROM = 12


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
    progress = progress or Silent()
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
        measure_until(
            space, target, table, "calibration", archs, progress,
            lambda done: len(of_space(done)) >= need, settings=CALIBRATION_SETTINGS,
        )
    )  # fmt: skip
    if len(records) < need:
        raise NasError(
            f"only {len(records)} calibration models could be timed (need {need}): the "
            "machine is too busy; run again when quieter",
            field="latency",
        )
    cal = fit(space, target, table, records.values())
    table.save_calibration(fp.key, space.name, cal.to_dict())
    return cal


def calibration_models(table: LatencyTable, fp_key: str) -> dict[str, ModelRecord]:
    """arch id -> record of the calibration models on record for ``fp_key`` (every space),
    taken as calibrations take them now."""
    return table.models(fp_key, "calibration", CALIBRATION_SETTINGS.label)


def fit(
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
    cold = bool(space_cold_bytes(space, fp))
    raw = Predictor(
        table.entries(fp.key),
        cold=cold,
        measure_missing=unit_filler(table, fp, target, eps_of(space)),
    )
    records = list(records)
    sums = [raw.sums(Architecture.from_json(rec.arch_json)) for rec in records]
    measured = [rec.ms * rec.speed if as_measured else rec.ms for rec in records]
    enough = len(measured) >= OPTIONAL_TERMS_FROM
    return fit_calibration(sums, measured, cold=cold and enough, io=enough, weights=enough)
