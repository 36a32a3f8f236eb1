"""A small search space for tests of orchestration (Ray, Optuna, storage, scaling):
its latency table is a handful of units, where `tiny`'s 3,126 take a minute to time."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import math
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from unittest import mock

from nas.latency.measure import MeasureSettings

MICRO_SPACE = """
name = "micro"
resolution = [8, 12]
in_channels = 1
num_classes = 10
[stem]
channels = 8
stride = 1
[head]
channels = [0, 16]
[[stages]]
op = ["conv", "ir"]
out_channels = [8, 16]
repeats = [1, 2]
stride = 2
kernel = [3, 5]
expansion = [1, 3]
[[stages]]
op = ["ds", "conv"]
out_channels = 16
stride = 1
kernel = 3
"""


def write_micro_space(directory: Path) -> Path:
    """``micro.toml`` in ``directory``; returns its path."""
    path = directory / "micro.toml"
    path.write_text(MICRO_SPACE)
    return path


@dataclasses.dataclass(frozen=True)
class TrustingSettings(MeasureSettings):
    """Warm-ups at their least, whole models in 2 windows of 3 samples, and every figure
    trusted, however far its windows disagree. For tests of what is done with figures
    (tables, calibration, searches): on a busy machine which units and models get
    refused as too noisy is chance, and warm-ups that never settle run to their time
    limit. Warm-up, windows and refusal are checked on scripted clocks
    (tests/latency); real figures are the benchmarks' business."""

    samples: int = 3
    windows: int = 2
    settle_tolerance: float = math.inf
    floor_tolerance: float = math.inf


#: A calibration model's figure as trusting: its own windows, so its label is its own
#: (as a calibration's is beside a validation's).
TRUSTING_CALIBRATION = TrustingSettings(windows=3)


@contextlib.contextmanager
def trusting_measurements() -> Iterator[None]:
    """Table builds, calibrations and validations measure with ``TrustingSettings``."""
    from nas.latency import build, calibration, canary, timing

    with (
        mock.patch.object(build, "MeasureSettings", TrustingSettings),
        mock.patch.object(timing, "MeasureSettings", TrustingSettings),
        mock.patch.object(canary, "MeasureSettings", TrustingSettings),
        mock.patch.object(calibration, "CALIBRATION_SETTINGS", TRUSTING_CALIBRATION),
    ):
        yield


@functools.cache
def _micro_latency_table() -> Path:
    from nas.search.config import load_study
    from nas.search.setup import prepare

    directory = Path(tempfile.mkdtemp(prefix="nas-test-micro-latency-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    study = load_study(
        "digits",
        {
            "space": str(write_micro_space(directory)),
            "latency.db": f"sqlite:///{directory / 'latency.db'}",
            "search.storage": f"sqlite:///{directory / 'studies.db'}",
            "export_dir": str(directory / "exports"),
            "data.limit": 600,
        },
    )
    with trusting_measurements():  # every figure stored, at once, however busy the machine
        prepare(study)  # every unit of the space on digits, and the calibration
    return directory / "latency.db"


def micro_latency_db(directory: Path) -> str:
    """A copy of the micro space's latency table for digits (8 px, 1 channel) as
    ``directory/latency.db``, returned as a URL: its units and calibration models are
    timed once per test process (~10 s, every figure trusted), not once per search test.
    A test that needs more units (another resolution, a scaled network) still measures
    them into its copy."""
    target = directory / "latency.db"
    if not target.exists():
        # SQLite's backup API, not a file copy: the table is in WAL mode, and what was
        # written last may still be in its -wal file.
        source = _micro_latency_table()
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    return f"sqlite:///{target}"
