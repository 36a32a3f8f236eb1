"""Build, calibrate and validate a latency table; load a predictor from one.

What the ``nas latency`` commands run, gathered in one place; each step lives in its
own module: ``build`` (the table), ``calibration``, ``validation``, ``loading`` (a
predictor from a stored table) and ``timing`` (the measurement loop they share). Each
step stores what it measures as it goes, so any of them can be killed and run again to
continue.
"""

from __future__ import annotations

from nas.latency.build import BuildReport, build_table
from nas.latency.calibration import CALIBRATION_MODELS, calibrate
from nas.latency.loading import load_predictor, resolve_fingerprint
from nas.latency.progress import Progress
from nas.latency.timing import measure_paced, measure_settled, measure_whole
from nas.latency.validation import (
    MAX_VALIDATION_PASSES,
    VALIDATION_PASSES,
    ValidationReport,
    stored_predictions,
    validate,
)

__all__ = [
    "CALIBRATION_MODELS",
    "MAX_VALIDATION_PASSES",
    "VALIDATION_PASSES",
    "BuildReport",
    "Progress",
    "ValidationReport",
    "build_table",
    "calibrate",
    "load_predictor",
    "measure_paced",
    "measure_settled",
    "measure_whole",
    "resolve_fingerprint",
    "stored_predictions",
    "validate",
]
