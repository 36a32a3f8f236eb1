"""Hardware latency: targets and fingerprints, a noise-controlled measurement harness,
per-unit lookup tables stored through SQLAlchemy, and a calibrated predictor."""

from __future__ import annotations

from nas.latency.lut import DEFAULT_URL, LatencyTable
from nas.latency.measure import (
    Measurement,
    MeasureSettings,
    NoisyMeasurementError,
    measure_module,
)
from nas.latency.predictor import Calibration, Predictor
from nas.latency.target import Fingerprint, Target, fingerprint, parse_target
from nas.latency.workflow import build_table, calibrate, load_predictor, measure_whole, validate

__all__ = [
    "DEFAULT_URL",
    "Calibration",
    "Fingerprint",
    "LatencyTable",
    "MeasureSettings",
    "Measurement",
    "NoisyMeasurementError",
    "Predictor",
    "Target",
    "build_table",
    "calibrate",
    "fingerprint",
    "load_predictor",
    "measure_module",
    "measure_whole",
    "parse_target",
    "validate",
]
