"""The house's structure, read from the code's imports (grimp, as `lint-imports` does):
no import cycle between modules, not even through imports made for type hints alone,
and frameworks at the edges. The layers themselves are the import-linter contract in
pyproject.toml, run by `.ci/run`."""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("nas", include_external_packages=True)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back(graph: grimp.ImportGraph):
    ours = {m for m in graph.modules if m == "nas" or m.startswith("nas.")}
    edges = {m: graph.find_modules_directly_imported_by(m) & ours for m in ours}
    assert _cycles(edges) == []


def test_ray_is_imported_by_the_ray_executors_alone(graph: grimp.ImportGraph):
    """Ray Tune runs trials (ray_tune); Ray Train trains one supernet data-parallel
    (ray_train): the two Ray frameworks, one adapter each, both at the search layer."""
    assert graph.find_modules_that_directly_import("ray") == {
        "nas.search.executors.ray_tune",
        "nas.search.executors.ray_train",
    }
