"""Predict a network's latency from the per-unit table plus a calibrated correction.

Per-unit sums miss what only a whole network has (per-layer framework overhead differs
between a lone op and a chain, caches stay warm or not, runtimes fuse across units), so
the prediction is ``a * sum(table) + b * units + c``, fitted by least squares on
whole-model measurements, weighted so that relative error is what gets minimised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from nas.arch import Architecture
from nas.errors import NasError
from nas.latency.units import Unit, cheapest, units_of
from nas.space import SearchSpace

__all__ = ["Calibration", "MissingUnitsError", "Predictor", "fit_calibration", "kendall_tau"]


@dataclass(frozen=True)
class Calibration:
    """``ms = scale * table_sum + per_unit * units + offset``."""

    scale: float = 1.0
    per_unit: float = 0.0
    offset: float = 0.0
    n_models: int = 0
    #: Mean absolute percentage error on the models it was fitted on.
    fit_mape: float = 0.0

    def apply(self, table_sum: float, units: int) -> float:
        return self.scale * table_sum + self.per_unit * units + self.offset

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class MissingUnitsError(NasError):
    """The table lacks units an architecture needs (and measuring is off)."""


def fit_calibration(
    table_sums: Sequence[float], units: Sequence[int], measured: Sequence[float]
) -> Calibration:
    """Weighted least squares (weights 1/measured: relative error) over whole-model data."""
    s = np.asarray(table_sums, dtype=float)
    n = np.asarray(units, dtype=float)
    y = np.asarray(measured, dtype=float)
    if len(y) < 5:
        raise NasError(
            f"calibration needs at least 5 measured models, got {len(y)}", field="calibrate"
        )
    design = np.stack([s, n, np.ones_like(s)], axis=1) / y[:, None]
    coef, *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    pred = np.stack([s, n, np.ones_like(s)], axis=1) @ coef
    mape = float(np.mean(np.abs(pred - y) / y))
    return Calibration(float(coef[0]), float(coef[1]), float(coef[2]), len(y), mape)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled), O(n^2): fine for hundreds of points."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("kendall_tau needs two equally long sequences of 2+ values")
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), k=1)
    sa, sb = da[iu], db[iu]
    concordant_minus_discordant = float(np.sum(sa * sb))
    n0 = len(sa)
    ties_a = float(np.sum(sa == 0))
    ties_b = float(np.sum(sb == 0))
    denom = np.sqrt((n0 - ties_a) * (n0 - ties_b))
    return concordant_minus_discordant / denom if denom > 0 else 0.0


class Predictor:
    """``predict(arch) -> ms`` from an in-memory copy of one fingerprint's table.

    ``measure_missing(unit) -> ms``, when given, fills units the table lacks (and should
    store them); without it a missing unit is a MissingUnitsError.
    """

    def __init__(
        self,
        entries: Mapping[str, float],
        calibration: Calibration | None = None,
        *,
        measure_missing: Callable[[Unit], float] | None = None,
        description: str = "",
    ) -> None:
        self.entries = dict(entries)
        self.calibration = calibration or Calibration()
        self.measure_missing = measure_missing
        self.description = description

    def raw(self, arch: Architecture) -> tuple[float, int]:
        """(sum of the table's entries over the units, number of units)."""
        units = units_of(arch)
        total = 0.0
        missing: list[Unit] = []
        for unit in units:
            ms = self.entries.get(unit.key)
            if ms is None:
                missing.append(unit)
            else:
                total += ms
        if missing:
            if self.measure_missing is None:
                raise MissingUnitsError(
                    f"the latency table ({self.description or 'this fingerprint'}) lacks "
                    f"{len(missing)} unit(s) of architecture {arch.short_id} (first: "
                    f"{missing[0].key}); build it for this space with `nas latency build`, "
                    "or allow measuring missing units",
                    field="latency",
                )
            for unit in missing:
                ms = self.measure_missing(unit)
                self.entries[unit.key] = ms
                total += ms
        return total, len(units)

    def predict(self, arch: Architecture) -> float:
        """Predicted latency in milliseconds."""
        return self.calibration.apply(*self.raw(arch))

    def predict_many(self, archs: Sequence[Architecture]) -> list[float]:
        return [self.predict(a) for a in archs]

    def fastest(self, space: SearchSpace) -> float:
        """The lowest latency this predictor gives any architecture of ``space`` (exact:
        a shortest path over the space's stages, every unit weighted as predicted)."""
        cal = self.calibration

        def weight(unit: Unit) -> float:
            if unit.key not in self.entries:
                raise MissingUnitsError(
                    f"the latency table lacks unit {unit.key} of space {space.name}",
                    field="latency",
                )
            return cal.scale * self.entries[unit.key] + cal.per_unit

        return cheapest(space, weight) + cal.offset
