"""A predictor from a stored table: which table serves a target, and its calibration.

A table may have travelled from another machine; ``resolve_fingerprint`` picks the one
that fits and says clearly when none does. Only this machine's table can fill the units
it lacks by measuring them (``unit_filler``).
"""

from __future__ import annotations

from collections.abc import Callable

from nas.core.errors import NasError
from nas.latency.lut import LatencyTable
from nas.latency.measure import NoisyMeasurementError
from nas.latency.predictor import Calibration, Predictor
from nas.latency.target import Fingerprint, Target, fingerprint
from nas.latency.timing import Figure, measure_unit, patiently
from nas.latency.units import Unit

__all__ = ["load_predictor", "resolve_fingerprint", "unit_filler"]


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


def unit_filler(
    table: LatencyTable, fp: Fingerprint, target: Target, eps: float
) -> Callable[[Unit, bool], float]:
    """Measure a unit's figure (hot or cold) the table lacks, store it, return it.

    A search must not die because the machine is busy (its own trials train beside
    it): when the unit stays too noisy, its least noisy figure serves this prediction
    but is not stored, so the table never holds a noisy entry and a later call measures
    it again."""

    def fill(unit: Unit, cold: bool) -> float:
        figure = Figure(unit, fp.cold_bytes if cold else 0)
        try:
            m = patiently(lambda: measure_unit(figure, target, eps), attempts=2)
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
        filler = unit_filler(table, fp, target, norm_eps)

    calibration = Calibration(**fitted[space])
    return Predictor(
        table.entries(fp.key),
        calibration,
        # Cold figures where the space's calibration weighs them: a space whose networks
        # stay in cache is fitted on hot figures alone (nas.latency.timing.space_cold_bytes).
        cold=bool(fp.cold_bytes) and calibration.cold_scale != 0.0,
        measure_missing=filler,
        description=fp.describe(),
    )
