"""A small search space for tests of orchestration (Ray, Optuna, storage, scaling):
its latency table is a handful of units, where `tiny`'s 3,126 take a minute to time."""

from __future__ import annotations

from pathlib import Path

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
