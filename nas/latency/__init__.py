"""Hardware latency: targets and fingerprints, a noise-controlled measurement harness,
per-unit lookup tables stored through SQLAlchemy, and a calibrated predictor.

The names below load on first use: importing a part (``nas.latency.runtimes`` for the
CLI's help, ``nas.latency.target`` to read a study file) does not import torch and
SQLAlchemy through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.latency.lut import DEFAULT_URL, LatencyTable
    from nas.latency.measure import (
        Measurement,
        MeasureSettings,
        NoisyMeasurementError,
        measure_module,
    )
    from nas.latency.predictor import Calibration, Predictor
    from nas.latency.target import Fingerprint, Target, fingerprint, parse_target
    from nas.latency.workflow import (
        build_table,
        calibrate,
        load_predictor,
        measure_whole,
        validate,
    )

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

#: Public name -> the module that defines it.
_HOME = {
    "DEFAULT_URL": "lut",
    "LatencyTable": "lut",
    "Measurement": "measure",
    "MeasureSettings": "measure",
    "NoisyMeasurementError": "measure",
    "measure_module": "measure",
    "Calibration": "predictor",
    "Predictor": "predictor",
    "Fingerprint": "target",
    "Target": "target",
    "fingerprint": "target",
    "parse_target": "target",
    "build_table": "workflow",
    "calibrate": "workflow",
    "load_predictor": "workflow",
    "measure_whole": "workflow",
    "validate": "workflow",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
