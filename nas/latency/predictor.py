"""Predict a network's latency from the per-unit table plus a calibrated correction.

Per-unit sums miss what only a whole network has (per-layer framework overhead differs
between a lone op and a chain, caches stay warm or not, runtimes fuse across units), so
the prediction is ``a * sum(hot) + d * sum(cold) + b * units + e * io + f * w + g * w**2
+ c``, fitted by least squares on whole-model measurements, weighted so that relative
error is what gets minimised. ``hot`` and ``cold`` are each unit timed with its weights
in cache and out of it (nas.latency.cold); tables without cold figures fit ``d = 0``.
``io`` counts the tensor elements the units take in and give out: a unit timed alone is
fed its input and hands back its output through the runtime's call (onnxruntime copies
both through ``session.run``), a unit inside a network does not. ``w`` is the MB of
weights the network reads in one pass (``Unit.weights_read``): units timed alone keep
their weights in cache, a network of many MB reads a share of them from memory that
grows with its total, hence the square; these terms are what make memory-bound networks
(onnxruntime `mobile`) predictable (benchmarks/README.md, "Pacing by round, and what a
network reads").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from nas.core.errors import NasError
from nas.latency.cold import cold_key
from nas.latency.units import Unit, cheapest, units_of
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace

__all__ = [
    "Calibration", "MissingUnitsError", "Predictor", "Sums", "fit_calibration",
]  # fmt: skip


@dataclass(frozen=True)
class Sums:
    """What a prediction is made of: a network's units' figures (ms) and counts, summed."""

    hot: float
    units: int
    cold: float = 0.0
    #: Millions of tensor elements the units take in and give out (per sample).
    io: float = 0.0
    #: MB of weights the units read in one pass (``Unit.weights_read``).
    weights: float = 0.0


@dataclass(frozen=True)
class Calibration:
    """``ms = scale * hot + cold_scale * cold + per_unit * units + io_scale * io +
    weights_scale * weights + weights_sq_scale * weights**2 + offset`` over a network's
    ``Sums``."""

    scale: float = 1.0
    per_unit: float = 0.0
    offset: float = 0.0
    n_models: int = 0
    #: Mean absolute percentage error on the models it was fitted on.
    fit_mape: float = 0.0
    cold_scale: float = 0.0
    #: Milliseconds per million elements taken in and given out by the units.
    io_scale: float = 0.0
    #: Milliseconds per MB of weights read, and per MB squared: the share of a network's
    #: weights that miss the cache grows with their total, so the bytes read from memory
    #: grow with its square.
    weights_scale: float = 0.0
    weights_sq_scale: float = 0.0

    def apply(self, sums: Sums) -> float:
        return (
            self.scale * sums.hot
            + self.cold_scale * sums.cold
            + self.per_unit * sums.units
            + self.io_scale * sums.io
            + self.weights_scale * sums.weights
            + self.weights_sq_scale * sums.weights**2
            + self.offset
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class MissingUnitsError(NasError):
    """The table lacks units an architecture needs (and measuring is off)."""


def fit_calibration(
    sums: Sequence[Sums],
    measured: Sequence[float],
    *,
    cold: bool = False,
    io: bool = False,
    weights: bool = False,
) -> Calibration:
    """Weighted least squares (weights 1/measured: relative error) over whole-model data;
    the cold figures' sum, the units' inputs and outputs and the weights read get a
    coefficient each only when asked for (the rest stay 0)."""
    y = np.asarray(measured, dtype=float)
    names = ["scale", "per_unit", "offset"] + ["cold_scale"] * cold + ["io_scale"] * io
    names += ["weights_scale", "weights_sq_scale"] * weights
    if len(y) != len(sums) or len(y) < len(names) + 2:
        raise NasError(
            f"calibration needs at least {len(names) + 2} measured models, got {len(y)}",
            field="calibrate",
        )
    x = np.asarray(
        [
            [s.hot, s.units, 1.0]
            + [s.cold] * cold
            + [s.io] * io
            + [s.weights, s.weights**2] * weights
            for s in sums
        ],
        dtype=float,
    )
    coef, *_ = np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)
    mape = float(np.mean(np.abs(x @ coef - y) / y))
    fitted = dict(zip(names, map(float, coef), strict=True))
    return Calibration(**fitted, n_models=len(y), fit_mape=mape)


class Predictor:
    """``predict(arch) -> ms`` from an in-memory copy of one fingerprint's table.

    ``cold``: the table holds each unit's cold figure beside its hot one (keyed
    ``cold_key``). ``measure_missing(unit, cold) -> ms``, when given, fills figures the
    table lacks (and should store them); without it a missing one is a MissingUnitsError.
    """

    def __init__(
        self,
        entries: Mapping[str, float],
        calibration: Calibration | None = None,
        *,
        cold: bool = False,
        measure_missing: Callable[[Unit, bool], float] | None = None,
        description: str = "",
    ) -> None:
        self.entries = dict(entries)
        self.calibration = calibration or Calibration()
        self.cold = cold
        self.measure_missing = measure_missing
        self.description = description

    def _keys(self, unit: Unit) -> tuple[str, ...]:
        """The unit's figures in the table: hot, then cold when the table has them."""
        return (unit.key, cold_key(unit.key)) if self.cold else (unit.key,)

    def _figure(self, unit: Unit, key: str) -> float | None:
        ms = self.entries.get(key)
        if ms is None and self.measure_missing is not None:
            ms = self.entries[key] = self.measure_missing(unit, key != unit.key)
        return ms

    def sums(self, arch: Architecture) -> Sums:
        """The units' hot figures, cold ones (0 without), count, inputs/outputs and the
        weights they read."""
        units = units_of(arch)
        hot = cold = 0.0
        missing: list[Unit] = []
        for unit in units:
            for key in self._keys(unit):
                ms = self._figure(unit, key)
                if ms is None:
                    missing.append(unit)
                elif key == unit.key:
                    hot += ms
                else:
                    cold += ms
        if missing:
            raise MissingUnitsError(
                f"the latency table ({self.description or 'this fingerprint'}) lacks "
                f"{len(missing)} figure(s) of architecture {arch.short_id} (first: "
                f"{missing[0].key}); build it for this space with `nas latency build`, "
                "or allow measuring missing units",
                field="latency",
            )
        io = sum(u.io_elements for u in units) / 1e6
        weights = sum(u.weights_read for u in units) / 1e6
        return Sums(hot, len(units), cold, io, weights)

    def predict(self, arch: Architecture) -> float:
        """Predicted latency in milliseconds."""
        return self.calibration.apply(self.sums(arch))

    def predict_many(self, archs: Sequence[Architecture]) -> list[float]:
        return [self.predict(a) for a in archs]

    def fastest(self, space: SearchSpace) -> float:
        """The lowest latency this predictor gives any architecture of ``space``: a
        shortest path over the space's stages, every unit weighted as predicted. Exact
        without the squared weights term; with it, a lower bound (the square is bounded
        by the weights read times their least, or for a negative coefficient their most,
        over the space), which is what refusing an unreachable budget needs."""
        cal = self.calibration
        if cal.weights_sq_scale:
            sign = 1.0 if cal.weights_sq_scale > 0 else -1.0
            bound = sign * cheapest(space, lambda u: sign * u.weights_read / 1e6)
            cal = replace(
                cal,
                weights_scale=cal.weights_scale + cal.weights_sq_scale * bound,
                weights_sq_scale=0.0,
            )

        def weight(unit: Unit) -> float:
            keys = self._keys(unit)
            if any(k not in self.entries for k in keys):
                raise MissingUnitsError(
                    f"the latency table lacks unit {unit.key} of space {space.name}",
                    field="latency",
                )
            hot, *cold = (self.entries[k] for k in keys)
            sums = Sums(hot, 1, sum(cold), unit.io_elements / 1e6, unit.weights_read / 1e6)
            return cal.apply(sums) - cal.offset

        return cheapest(space, weight) + cal.offset
