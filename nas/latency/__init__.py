"""Hardware latency: targets and fingerprints, a noise-controlled measurement harness,
per-unit lookup tables stored through SQLAlchemy, and a calibrated predictor.

The names below are resolved on first use (PEP 562): importing one light submodule,
such as ``nas.latency.target`` for a study file, must not import torch with the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_HOMES = {
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

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
