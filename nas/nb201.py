"""NAS-Bench-201 in tabular mode: the cell encoding, equivalence of cells, and the
benchmark tables (accuracy of every cell, latency on 27 devices) as numpy arrays.

A cell is a DAG of 4 nodes (0 = input, 3 = output); each of its 6 edges carries one op
of :data:`OPS`. Edge order is the official string's: node1<-0, node2<-0, node2<-1,
node3<-0, node3<-1, node3<-2, written ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Many cells compute the same network (``none`` edges, unreachable or dead nodes, the
two middle nodes swapped, an identity edge that only copies a node): :func:`canonical`
gives all of them one key, so a search never pays twice for one network.

numpy and the standard library only: Optuna, Ray and torch never appear here.
"""

from __future__ import annotations

import csv
import gzip
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import NasError
from nas.objectives import ACCURACY_LATENCY, hypervolume_2d
from nas.strict import is_int

__all__ = [
    "DATASETS",
    "EDGES",
    "FILES",
    "METRICS",
    "OPS",
    "PARAM_NAMES",
    "Entry",
    "Table",
    "canonical",
    "format_cell",
    "front_indices",
    "hypervolume_ratio",
    "load_table",
    "ops_from_params",
    "parse",
    "prune",
    "reference_point",
    "true_front",
]

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source, target) of each edge, in the official string's order.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: Optuna parameter labels of the edges (``edge_<target>_<source>``), in EDGES order.
PARAM_NAMES: tuple[str, ...] = tuple(f"edge_{j}_{i}" for i, j in EDGES)
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16_120")
#: Accuracy used by fronts: cifar10-valid validation (selection) or CIFAR-10 test (reporting).
METRICS: tuple[str, ...] = ("val", "test")
FILES: Mapping[str, str] = {
    "main": "nb201_acc_latency.csv.gz",
    "valid": "nb201_cifar10_valid_avg.csv.gz",
    "single_seed": "nb201_test_acc_12ep_200ep_single_seed.csv.gz",
}

_PARAMETRIC = frozenset({"nor_conv_1x1", "nor_conv_3x3"})
_INTO = {j: [(k, i) for k, (i, t) in enumerate(EDGES) if t == j] for j in (1, 2, 3)}
_SEED_COLUMNS = {
    "cifar10": "Cifar10TestAccuracy{}Epochs",
    "cifar100": "Cifar100TestAccuracy{}Epochs",
    "imagenet16_120": "ImageNet16TestAccuracy{}Epochs",
}


# ---------------------------------------------------------------- cell encoding


def _check_ops(ops: Sequence[str], where: str = "ops") -> tuple[str, ...]:
    if isinstance(ops, str) or len(ops) != len(EDGES):
        raise NasError(f"expected {len(EDGES)} ops, one per edge", field=where)
    for k, op in enumerate(ops):
        if op not in OPS:
            raise NasError(f"unknown op {op!r} (known: {', '.join(OPS)})", field=f"{where}[{k}]")
    return tuple(ops)


def parse(arch_str: str) -> tuple[str, ...]:
    """The 6 ops of an official arch string, in :data:`EDGES` order."""
    if not isinstance(arch_str, str):
        raise NasError(f"expected a string, got {type(arch_str).__name__}", field="arch_str")
    nodes = arch_str.split("+")
    if len(nodes) != 3:
        raise NasError(f"expected 3 '+'-separated nodes in {arch_str!r}", field="arch_str")
    ops: list[str] = []
    for j, node in enumerate(nodes, start=1):
        where = f"arch_str.node{j}"
        if len(node) < 2 or node[0] != "|" or node[-1] != "|":
            raise NasError(f"expected '|op~i|...|', got {node!r}", field=where)
        edges = node[1:-1].split("|")
        if len(edges) != j:
            raise NasError(f"expected {j} edges, got {node!r}", field=where)
        for i, edge in enumerate(edges):
            op, sep, source = edge.rpartition("~")
            if not sep or source != str(i):
                raise NasError(f"expected 'op~{i}', got {edge!r}", field=f"{where}.from{i}")
            if op not in OPS:
                raise NasError(
                    f"unknown op {op!r} (known: {', '.join(OPS)})", field=f"{where}.from{i}"
                )
            ops.append(op)
    return tuple(ops)


def format_cell(ops: Sequence[str]) -> str:
    """The official arch string of 6 ops (inverse of :func:`parse`)."""
    ops = _check_ops(ops)
    nodes = ["|" + "|".join(f"{ops[k]}~{i}" for k, i in _INTO[j]) + "|" for j in (1, 2, 3)]
    return "+".join(nodes)


def ops_from_params(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The cell of an Optuna params dict keyed by :data:`PARAM_NAMES`."""
    missing = [n for n in PARAM_NAMES if n not in params]
    if missing:
        raise NasError(f"missing {', '.join(missing)}", field="params")
    return _check_ops([params[n] for n in PARAM_NAMES], "params")


# ------------------------------------------------------------- equivalence


def prune(ops: Sequence[str]) -> tuple[str, ...]:
    """The cell with every edge that cannot change the output set to ``none``.

    An edge counts only if its source is reachable from the input and its target reaches
    the output; a cell with no input-to-output path is all ``none`` (the zero network).
    Pruned cells compute what the original computes (up to a constant: a conv on a zero
    node outputs its BatchNorm bias), and the benchmark measures them as separate runs.
    """
    ops = _check_ops(ops)
    live = [op != "none" for op in ops]
    reach = {0}
    for j in (1, 2, 3):
        if any(live[k] and i in reach for k, i in _INTO[j]):
            reach.add(j)
    if 3 not in reach:
        return ("none",) * len(EDGES)
    useful = {3}
    for i in (2, 1, 0):
        if any(live[k] and t in useful for k, (s, t) in enumerate(EDGES) if s == i):
            useful.add(i)
    return tuple(
        op if live[k] and i in reach and j in useful else "none"
        for k, ((i, j), op) in enumerate(zip(EDGES, ops, strict=True))
    )


# A node's value is a sum: a tuple of terms. A term is ("x",) for the input, or
# (op, instance, argument value) where instance is the edge number of a parametric op
# (each conv edge has its own weights) and None for a parameter-free one (avg_pool of
# equal arguments is one value wherever it is computed).
_Term = tuple[Any, ...]


def _output_terms(ops: tuple[str, ...]) -> tuple[_Term, ...]:
    values: dict[int, tuple[_Term, ...]] = {0: (("x",),)}
    for j in (1, 2, 3):
        terms: list[_Term] = []
        for k, i in _INTO[j]:
            op, value = ops[k], values[i]
            if op == "none" or not value:  # no edge, or an edge from a zero node
                continue
            if op == "skip_connect":  # identity: the summands pass through
                terms.extend(value)
            else:
                terms.append((op, k if op in _PARAMETRIC else None, value))
        values[j] = tuple(terms)
    return values[3]


def _render(term: _Term, labels: Mapping[int, int] | None) -> str:
    if term[0] == "x":
        return "x"
    op, instance, arg = term
    tag = f"#{labels[instance]}" if labels is not None and instance is not None else ""
    return f"{op}{tag}({'+'.join(sorted(_render(t, labels) for t in arg))})"


def _instances(term: _Term, uses: Counter[int], defs: dict[int, str]) -> None:
    if term[0] == "x":
        return
    _, instance, arg = term
    if instance is not None:
        uses[instance] += 1
        defs[instance] = _render(term, None)
    for t in arg:
        _instances(t, uses, defs)


def canonical(ops: Sequence[str]) -> tuple[str, ...]:
    """A key shared by exactly the cells that compute the same network (a conv on a
    zero node counted as zero, as in :func:`prune`).

    The key is the output node written as a sorted tuple of summands, such as
    ``("nor_conv_3x3(avg_pool_3x3(x))", "x")``; the zero network (no input-to-output
    path) is ``()``. Equal keys mean the same ops with the same weight sharing applied to
    the same inputs, so the key is invariant to ``none`` edges, unreachable and dead
    nodes (:func:`prune`), the order of the middle nodes, sums regrouped through
    ``skip_connect`` edges, and avg_pool computed twice on one node. A conv reused by
    several paths is tagged ``#n`` so that it differs from two separate convs.
    Algebraic identities of the ops themselves (avg_pool is linear, BatchNorm ignores
    scale) are not used: such cells are trained as different networks.
    """
    out = _output_terms(_check_ops(ops))
    uses: Counter[int] = Counter()
    defs: dict[int, str] = {}
    for term in out:
        _instances(term, uses, defs)
    if all(n == 1 for n in uses.values()):  # a tree: the plain expression is canonical
        return tuple(sorted(_render(t, None) for t in out))
    # Shared convs: number instances by definition; twins (same definition) can swap.
    order = sorted(defs, key=defs.__getitem__)
    twins = [list(g) for _, g in itertools.groupby(order, key=defs.__getitem__)]
    best: tuple[str, ...] | None = None
    for perm in itertools.product(*(itertools.permutations(g) for g in twins)):
        labels = {inst: n for n, inst in enumerate(itertools.chain.from_iterable(perm))}
        key = tuple(sorted(_render(t, labels) for t in out))
        if best is None or key < best:
            best = key
    assert best is not None
    return best


# ------------------------------------------------------------------- tables


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


def front_indices(accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Indices (ascending) of points no other point beats (accuracy up, latency down);
    duplicates of a front point are all kept, as in nas.objectives.pareto_front.

    O(n log n): a point is on the front iff it has the best accuracy among points of its
    latency and beats every point of strictly lower latency. (pareto_front itself is
    O(n^2) in Python: minutes for the 15,625 cells.)
    """
    accuracy, latency = np.asarray(accuracy, dtype=float), np.asarray(latency, dtype=float)
    if accuracy.shape != latency.shape or accuracy.ndim != 1:
        raise ValueError("front_indices: accuracy and latency must be 1-D of one length")
    if np.isnan(accuracy).any() or np.isnan(latency).any():
        raise ValueError("front_indices: NaN objective value")
    latencies, group = np.unique(latency, return_inverse=True)
    best = np.full(len(latencies), -np.inf)
    np.maximum.at(best, group, accuracy)
    before = np.concatenate(([-np.inf], np.maximum.accumulate(best)[:-1]))
    keep = (accuracy == best[group]) & (accuracy > before[group])
    return np.flatnonzero(keep)


def true_front(table: Table, device: str, metric: str = "val") -> np.ndarray:
    """Indices of the Pareto-optimal cells of the whole table on ``device``."""
    return front_indices(table.accuracy(metric), table.latency(device))


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
    best = hypervolume_2d([(acc[i], lat[i]) for i in front], ref, ACCURACY_LATENCY)
    if best <= 0:  # no cell beats the median in both: nothing to find
        raise NasError(f"the true front on {device} has no hypervolume", field="device")
    mine = front_indices(acc[rows], lat[rows]) if rows else []
    got = hypervolume_2d([(acc[rows[k]], lat[rows[k]]) for k in mine], ref, ACCURACY_LATENCY)
    return got / best
