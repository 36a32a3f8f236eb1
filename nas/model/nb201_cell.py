"""NAS-Bench-201's cell genotype: the cell encoding and equivalence of cells.

A cell is a DAG of 4 nodes (0 = input, 3 = output); each of its 6 edges carries one op
of :data:`OPS`. Edge order is the official string's: node1<-0, node2<-0, node2<-1,
node3<-0, node3<-1, node3<-2, written ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Many cells compute the same network (``none`` edges, unreachable or dead nodes, the
two middle nodes swapped, an identity edge that only copies a node): :func:`canonical`
gives all of them one key, so a search never pays twice for one network.

The standard library only: the benchmark's tables live in :mod:`nas.bench.nb201`.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from nas.core.errors import NasError

__all__ = [
    "EDGES",
    "OPS",
    "PARAM_NAMES",
    "canonical",
    "format_cell",
    "ops_from_params",
    "parse",
    "prune",
]

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source, target) of each edge, in the official string's order.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: Optuna parameter labels of the edges (``edge_<target>_<source>``), in EDGES order.
PARAM_NAMES: tuple[str, ...] = tuple(f"edge_{j}_{i}" for i, j in EDGES)

_PARAMETRIC = frozenset({"nor_conv_1x1", "nor_conv_3x3"})
_INTO = {j: [(k, i) for k, (i, t) in enumerate(EDGES) if t == j] for j in (1, 2, 3)}


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
