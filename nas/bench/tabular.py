"""Tabular evaluation: a trial's result looked up in NAS-Bench-201 instead of trained.

It plugs in where training plugs in (``nas.search.trial``), so a tabular search measures
the whole stack: study file, sampler, Ray Tune, storage, dashboard.

Which table row a sampled cell is scored by: every cell of one canonical class (see
``nas.bench.nb201.canonical``) computes the same network, so the class is evaluated once, on
one representative row, and a later cell of the class reuses that result (it costs no
query). The representative is the class's fastest row on the latency device (the
implementation one would deploy: the devices also ran the dead edges). The representative's own accuracy and latency are what
the trial reports, so every reported point is a real row of the table.

Accuracy: cifar10-valid validation accuracy for selection; CIFAR-10 test accuracy only
for reporting (the final front). The table's 12-epoch figure is a test accuracy: only a
study that asks for two fidelities (``[tabular] low_fidelity``, for studying early
stopping) ranks on it, at a 12-epoch rung; otherwise it is never used to select.

numpy and the standard library only: no torch, Optuna or Ray here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas.bench.nb201 import Table, load_table
from nas.core.errors import NasError
from nas.core.paths import data_root
from nas.model.nb201_cell import parse

if TYPE_CHECKING:
    from nas.model.arch import Architecture

__all__ = [
    "BENCHMARKS",
    "FULL_EPOCHS",
    "LOW_EPOCHS",
    "Lookup",
    "TableLatency",
    "TabularBenchmark",
    "check_cell",
    "open_benchmark",
    "tables_folder",
]

#: Benchmarks a study's ``tabular.benchmark`` may name.
BENCHMARKS: tuple[str, ...] = ("nasbench201",)
#: Epochs behind the tables' two fidelities: the 12-epoch figure and the full training.
LOW_EPOCHS, FULL_EPOCHS = 12, 200


@dataclass(frozen=True)
class Lookup:
    """What one query returns: the representative row's figures. Accuracies are
    fractions in [0, 1] like every trained result (the tables hold percentages)."""

    row: int
    arch_str: str
    canonical_id: int
    val_accuracy: float
    test_accuracy: float
    #: 12-epoch CIFAR-10 *test* accuracy (one seed): information only.
    acc_12ep: float
    #: Latency of the row on the benchmark's device.
    latency_ms: float


class TabularBenchmark:
    """NAS-Bench-201 on CIFAR-10, latency on one of the table's devices."""

    def __init__(self, table: Table, device: str) -> None:
        lat = table.latency(device)  # unknown device: a NasError naming the field
        self.table = table
        self.device = device
        ids = table.canonical_ids
        # Per class, the fastest row (ties: the lowest index).
        order = np.lexsort((np.arange(len(ids)), lat, ids))
        first = np.ones(len(order), dtype=bool)
        first[1:] = ids[order][1:] != ids[order][:-1]
        rep = np.empty(int(ids.max()) + 1, dtype=np.int64)
        rep[ids[order][first]] = order[first]
        self._rep = rep[ids]
        self._test = table.test_accuracy("cifar10")
        self._acc12 = table.low_fidelity("cifar10")
        self._lat = lat

    def representative(self, cell: str) -> int:
        """The row that scores ``cell`` (an official arch string)."""
        return int(self._rep[self.table.index_of(cell)])

    def representative_cell(self, cell: str) -> str:
        return self.table.arch_str[self.representative(cell)]

    def lookup(self, cell: str) -> Lookup:
        """One query: the figures of ``cell``'s representative row."""
        i = self.representative(cell)
        return Lookup(
            row=i,
            arch_str=self.table.arch_str[i],
            canonical_id=int(self.table.canonical_ids[i]),
            val_accuracy=float(self.table.val_accuracy[i]) / 100.0,
            test_accuracy=float(self._test[i]) / 100.0,
            acc_12ep=float(self._acc12[i]) / 100.0,
            latency_ms=float(self._lat[i]),
        )

    def latency(self, cell: str) -> float:
        """Latency of ``cell``'s representative on the device (no query: the table
        stands in for a latency predictor)."""
        return float(self._lat[self.representative(cell)])

    def fastest_ms(self) -> float:
        return float(self._lat.min())


@functools.lru_cache(maxsize=4)
def _table(path: str) -> Table:
    return load_table(path)


def open_benchmark(name: str, path: str, device: str) -> TabularBenchmark:
    """The benchmark ``name`` from the tables in directory ``path``, or without one from
    the data root's folder ``<root>/<name>`` (loaded once per process: Ray workers reuse
    it across trials)."""
    if name not in BENCHMARKS:
        raise NasError(
            f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})",
            field="tabular.benchmark",
        )
    return _open(name, tables_folder(name, path), device)


def tables_folder(name: str, path: str) -> str:
    """``path`` made absolute, or without one the data root's ``<root>/<name>``."""
    if path:
        return str(Path(path).resolve())
    fallback = data_root() / name
    if not fallback.is_dir():
        raise NasError(
            f"needs the folder of the benchmark's tables: give it (--data-path) or put the "
            f"tables in {fallback}",
            field="tabular.path",
        )
    return str(fallback.resolve())


@functools.lru_cache(maxsize=16)
def _open(name: str, path: str, device: str) -> TabularBenchmark:
    try:
        return TabularBenchmark(_table(path), device)
    except NasError as err:
        # The study's fields; a column of a table file keeps its own name (source: the file).
        field = {"device": "tabular.device", "path": "tabular.path", "": "tabular.path"}.get(
            err.field, err.field
        )
        raise NasError(err.reason, field=field, source=err.source or path) from None


def check_cell(cell: str) -> str:
    """``cell`` as an official arch string, or a NasError naming ``cell``."""
    if not cell:
        raise NasError(
            "tabular mode needs a space whose architectures have a cell (e.g. nasbench201)",
            field="space",
        )
    parse(cell)
    return cell


@dataclass(frozen=True)
class TableLatency:
    """A tabular study's latency model and canonicaliser, in the shape of
    ``nas.latency.predictor.Predictor`` (``predict``, ``predict_many``, ``fastest``).
    Plain strings only, so it pickles cheaply into Ray's searcher; the table itself is
    opened once per process."""

    benchmark: str
    path: str
    device: str

    @property
    def bench(self) -> TabularBenchmark:
        return open_benchmark(self.benchmark, self.path, self.device)

    def representative(self, arch: Architecture) -> Architecture:
        """``arch`` with its cell replaced by the representative row's: the network the
        query scores (equivalent cells all map to one, so they share one result)."""
        cell = self.bench.representative_cell(check_cell(arch.cell))
        return arch if cell == arch.cell else replace(arch, cell=cell)

    def predict(self, arch: Architecture) -> float:
        return self.bench.latency(check_cell(arch.cell))

    def predict_many(self, archs: Sequence[Architecture]) -> list[float]:
        return [self.predict(a) for a in archs]

    def fastest(self, space: object = None) -> float:
        """The fastest cell of the table (every cell is in the NAS-Bench-201 space)."""
        return self.bench.fastest_ms()
