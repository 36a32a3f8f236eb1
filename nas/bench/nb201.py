"""NAS-Bench-201 in tabular mode: the benchmark tables (accuracy of every cell, latency on
27 devices) as numpy arrays, and the hardware-aware fronts they hold.

Cells are encoded as in :mod:`nas.model.nb201_cell`. numpy and the standard library
only: Optuna, Ray and torch never appear here.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.core.errors import NasError
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import hypervolume_2d, non_dominated
from nas.core.strict import is_int
from nas.model.nb201_cell import EDGES, OPS, canonical, format_cell, parse

__all__ = [
    "DATASETS",
    "FILES",
    "METRICS",
    "Entry",
    "Table",
    "hypervolume_ratio",
    "load_table",
    "reference_point",
    "true_front",
]

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16_120")
#: Accuracy used by fronts: cifar10-valid validation (selection) or CIFAR-10 test (reporting).
METRICS: tuple[str, ...] = ("val", "test")
FILES: Mapping[str, str] = {
    "main": "nb201_acc_latency.csv.gz",
    "valid": "nb201_cifar10_valid_avg.csv.gz",
    "single_seed": "nb201_test_acc_12ep_200ep_single_seed.csv.gz",
}
_SEED_COLUMNS = {
    "cifar10": "Cifar10TestAccuracy{}Epochs",
    "cifar100": "Cifar100TestAccuracy{}Epochs",
    "imagenet16_120": "ImageNet16TestAccuracy{}Epochs",
}


@dataclass(frozen=True)
class Entry:
    """Everything the tables know about one cell: the result of one tabular trial."""

    index: int
    arch_str: str
    ops: tuple[str, ...]
    canonical_id: int
    val_accuracy: float
    test_accuracy: Mapping[str, float]
    acc_12ep: Mapping[str, float]
    acc_200ep_seed: Mapping[str, float]
    latency_ms: Mapping[str, float]


@dataclass(frozen=True, eq=False)
class Table:
    """The NAS-Bench-201 tables, one row per cell in official index order.

    Accuracies are percentages, latencies milliseconds; arrays are read-only.
    ``canonical_ids[i]`` is the lowest index of a cell computing the same network as
    cell ``i`` (see :func:`canonical`), so ``canonical_ids[i] == i`` marks one
    representative per network.
    """

    path: Path
    arch_str: tuple[str, ...]
    #: Op of each edge as an index into OPS, shape (n, 6).
    op_codes: np.ndarray
    #: cifar10-valid validation accuracy after 200 epochs, 3-seed mean (for selection).
    val_accuracy: np.ndarray
    canonical_ids: np.ndarray
    test_acc: Mapping[str, np.ndarray] = field(repr=False)
    acc_12ep: Mapping[str, np.ndarray] = field(repr=False)
    acc_200ep_seed: Mapping[str, np.ndarray] = field(repr=False)
    latency_ms: Mapping[str, np.ndarray] = field(repr=False)
    _rows: Mapping[str, int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.arch_str)

    @property
    def index(self) -> np.ndarray:
        return np.arange(len(self))

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self.latency_ms)

    def ops(self, index: int) -> tuple[str, ...]:
        return tuple(OPS[c] for c in self.op_codes[self.index_of(index)])

    def index_of(self, cell: int | str | Sequence[str]) -> int:
        """Row of a cell given as an index, an arch string or 6 ops."""
        if is_int(cell) or isinstance(cell, np.integer):
            i = int(cell)
            if not 0 <= i < len(self):
                raise NasError(f"{i} is not in 0..{len(self) - 1}", field="index")
            return i
        arch = format_cell(parse(cell)) if isinstance(cell, str) else format_cell(cell)
        if arch not in self._rows:
            raise NasError(f"{arch} is not in the table", field="arch_str", source=str(self.path))
        return self._rows[arch]

    def lookup(self, cell: int | str | Sequence[str]) -> Entry:
        i = self.index_of(cell)
        return Entry(
            index=i,
            arch_str=self.arch_str[i],
            ops=self.ops(i),
            canonical_id=int(self.canonical_ids[i]),
            val_accuracy=float(self.val_accuracy[i]),
            test_accuracy={d: float(a[i]) for d, a in self.test_acc.items()},
            acc_12ep={d: float(a[i]) for d, a in self.acc_12ep.items()},
            acc_200ep_seed={d: float(a[i]) for d, a in self.acc_200ep_seed.items()},
            latency_ms={d: float(a[i]) for d, a in self.latency_ms.items()},
        )

    def latency(self, device: str) -> np.ndarray:
        if device not in self.latency_ms:
            raise NasError(
                f"unknown device {device!r} (known: {', '.join(self.devices)})", field="device"
            )
        return self.latency_ms[device]

    def test_accuracy(self, dataset: str = "cifar10") -> np.ndarray:
        """Test accuracy after 200 epochs, mean over seeds."""
        return self.test_acc[_dataset(dataset)]

    def low_fidelity(self, dataset: str = "cifar10") -> np.ndarray:
        """Test accuracy after 12 epochs, one seed. The files hold no 12-epoch validation
        accuracy: a search that selects on this one looks at the test split."""
        return self.acc_12ep[_dataset(dataset)]

    def single_seed_accuracy(self, dataset: str = "cifar10") -> np.ndarray:
        """Test accuracy after 200 epochs of the same seed as :meth:`low_fidelity`."""
        return self.acc_200ep_seed[_dataset(dataset)]

    def accuracy(self, metric: str = "val") -> np.ndarray:
        """``val``: cifar10-valid validation accuracy; ``test``: CIFAR-10 test accuracy."""
        if metric not in METRICS:
            raise NasError(
                f"unknown metric {metric!r} (known: {', '.join(METRICS)})", field="metric"
            )
        return self.val_accuracy if metric == "val" else self.test_acc["cifar10"]


def _dataset(name: str) -> str:
    if name not in DATASETS:
        raise NasError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})", field="dataset")
    return name


class _Csv:
    """One gzip'd CSV file read whole; columns come out by name, checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise NasError("missing file", source=str(path))
        try:
            with gzip.open(path, "rt", newline="") as f:
                rows = list(csv.reader(f))
        except (OSError, EOFError, csv.Error, UnicodeDecodeError) as err:
            raise NasError(f"unreadable gzip'd CSV: {err}", source=str(path)) from None
        if not rows:
            raise NasError("empty file", source=str(path))
        self.header, self.rows = rows[0], rows[1:]
        for n, row in enumerate(self.rows, start=2):
            if len(row) != len(self.header):
                raise NasError(
                    f"line {n} has {len(row)} fields, the header {len(self.header)}",
                    source=str(path),
                )

    def text(self, name: str) -> list[str]:
        if name not in self.header:
            raise NasError("missing column", field=name, source=str(self.path))
        k = self.header.index(name)
        return [row[k] for row in self.rows]

    def numbers(self, name: str, order: np.ndarray | None = None) -> np.ndarray:
        values = self.text(name)
        try:
            array = np.array(values, dtype=float)
        except ValueError:
            n, bad = next((n, v) for n, v in enumerate(values, 2) if not _is_float(v))
            raise NasError(
                f"line {n}: not a number: {bad!r}", field=name, source=str(self.path)
            ) from None
        if not np.isfinite(array).all():
            n = int(np.flatnonzero(~np.isfinite(array))[0]) + 2
            raise NasError(f"line {n}: not a finite number", field=name, source=str(self.path))
        if order is not None:
            array = array[order]
        array.setflags(write=False)
        return array

    def align(self, column: str, rows: Mapping[str, int]) -> np.ndarray:
        """For each table row, the line of this file with the same arch string."""
        where = np.full(len(rows), -1)
        for line, arch in enumerate(self.text(column)):
            i = rows.get(arch)
            if i is None:
                raise NasError(
                    f"line {line + 2}: {arch!r} is not in {FILES['main']}",
                    field=column,
                    source=str(self.path),
                )
            if where[i] >= 0:
                raise NasError(
                    f"line {line + 2}: {arch!r} appears twice", field=column, source=str(self.path)
                )
            where[i] = line
        if (where < 0).any():
            raise NasError(
                f"{int((where < 0).sum())} cells of {FILES['main']} are missing",
                field=column,
                source=str(self.path),
            )
        return where


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_table(path: str | Path) -> Table:
    """Read the three NAS-Bench-201 files (:data:`FILES`) from the directory ``path``.

    Rows follow the main file's ``index`` column; the other two files are joined by arch
    string, so their row order does not matter.
    """
    root = Path(path)
    if not root.is_dir():
        raise NasError("not a directory", field="path", source=str(root))
    main = _Csv(root / FILES["main"])
    index = main.numbers("index")
    n = len(index)
    if not np.array_equal(np.sort(index), np.arange(n)):
        raise NasError(f"expected each of 0..{n - 1} once", field="index", source=str(main.path))
    order = np.argsort(index)
    names = main.text("arch_str")
    arch_str = tuple(names[k] for k in order)
    codes = np.empty((n, len(EDGES)), dtype=np.int8)
    cells: list[tuple[str, ...]] = []
    for i, arch in enumerate(arch_str):
        try:
            cells.append(parse(arch))
            codes[i] = [OPS.index(op) for op in cells[-1]]
        except NasError as err:
            raise NasError(
                f"line {order[i] + 2}: {err.reason}", field=err.field, source=str(main.path)
            ) from None
    rows = {arch: i for i, arch in enumerate(arch_str)}
    if len(rows) != n:
        raise NasError("an arch string appears twice", field="arch_str", source=str(main.path))
    codes.setflags(write=False)

    test = {d: main.numbers(f"{d}_test_acc_200ep", order) for d in DATASETS}
    devices = [c.removesuffix("_ms") for c in main.header if c.endswith("_ms")]
    if not devices:
        raise NasError("no latency columns (<device>_ms)", source=str(main.path))
    latency = {d: main.numbers(f"{d}_ms", order) for d in devices}

    valid = _Csv(root / FILES["valid"])
    val_accuracy = valid.numbers("valid-accuracy", valid.align("arch_str", rows))

    seed = _Csv(root / FILES["single_seed"])
    seed_order = seed.align("ArchitectureString", rows)
    acc_12 = {d: seed.numbers(c.format(12), seed_order) for d, c in _SEED_COLUMNS.items()}
    acc_200 = {d: seed.numbers(c.format(200), seed_order) for d, c in _SEED_COLUMNS.items()}

    first: dict[tuple[str, ...], int] = {}
    ids = np.array([first.setdefault(canonical(c), i) for i, c in enumerate(cells)])
    ids.setflags(write=False)
    return Table(
        path=root,
        arch_str=arch_str,
        op_codes=codes,
        val_accuracy=val_accuracy,
        canonical_ids=ids,
        test_acc=test,
        acc_12ep=acc_12,
        acc_200ep_seed=acc_200,
        latency_ms=latency,
        _rows=rows,
    )


# ------------------------------------------------------- hardware-aware fronts


def true_front(table: Table, device: str, metric: str = "val") -> np.ndarray:
    """Indices of the Pareto-optimal cells of the whole table on ``device``."""
    points = np.column_stack([table.accuracy(metric), table.latency(device)])
    return np.flatnonzero(non_dominated(points, ACCURACY_LATENCY))


def reference_point(table: Table, device: str, metric: str = "val") -> tuple[float, float]:
    """(median accuracy, median latency) of the whole space."""
    return float(np.median(table.accuracy(metric))), float(np.median(table.latency(device)))


def hypervolume_ratio(
    found: Iterable[int], table: Table, device: str, metric: str = "val"
) -> float:
    """Hypervolume of the found cells over that of the true front, both against
    :func:`reference_point` (only cells better than the median in both count): 1 means
    the true front was found, 0 that nothing beats the median cell in both."""
    acc, lat = table.accuracy(metric), table.latency(device)
    rows = [table.index_of(i) for i in found]
    ref = reference_point(table, device, metric)
    front = true_front(table, device, metric)
    best = hypervolume_2d(np.column_stack([acc[front], lat[front]]), ref, ACCURACY_LATENCY)
    if best <= 0:  # no cell beats the median in both: nothing to find
        raise NasError(f"the true front on {device} has no hypervolume", field="device")
    got = hypervolume_2d([(acc[i], lat[i]) for i in rows], ref, ACCURACY_LATENCY)
    return got / best
