"""Multi-objective asynchronous successive halving (MOASHA, Schmucker et al. 2021).

Rungs sit at geometric epoch counts (``min_epochs * eta**k`` below ``max_epochs``). When
a trial reaches a rung, it goes on only if it is among the best ``ceil(n / eta)`` of the
``n`` trials that have reached that rung so far; nobody waits for a rung to fill, so no
worker idles (ASHA's stopping rule). "Best" is a total order over every objective of
the study, so a fast network with middling accuracy can beat a slow accurate one:

1. non-dominated rank (rank 0 = the rung's front, as in NSGA-II);
2. within a rank, crowding distance, larger first (the front's ends are infinite), so
   promotions spread along the front instead of bunching;
3. then arrival order at the rung (earlier first), so a decision never changes.

The first trial at a rung always goes on (ceil(1 / eta) = 1). Framework-free: the Ray
Tune scheduler and the in-process executor both ask :meth:`ParetoHalving.report`, built
for a study by :func:`for_study` (its objectives are the metrics the study's Optuna
study optimises: all of them in pareto mode, the one score in the others, so with one
objective this is ASHA's rule).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.bench.tabular import LOW_EPOCHS
from nas.core.errors import NasError
from nas.core.pareto import minimised, pareto_ranks

if TYPE_CHECKING:
    from nas.search.config import StudyConfig

__all__ = [
    "ParetoHalving",
    "StudyHalving",
    "crowding_distances",
    "for_study",
    "order",
    "rung_levels",
]


def rung_levels(min_epochs: int, max_epochs: int, eta: int) -> tuple[int, ...]:
    """Epoch counts of the rungs: min, min*eta, ... strictly below max (max completes)."""
    if eta < 2:
        raise NasError(f"eta must be an integer >= 2, got {eta}", field="search.halving_eta")
    if not 1 <= min_epochs < max_epochs:
        raise NasError(
            f"need 1 <= min_epochs < epochs, got {min_epochs} and {max_epochs}",
            field="search.halving_min_epochs",
        )
    levels, r = [], min_epochs
    while r < max_epochs:
        levels.append(r)
        r *= eta
    return tuple(levels)


def crowding_distances(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each (minimised) point within one front: the sum
    over objectives of the normalised gap between its two neighbours; ends are inf."""
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        idx = np.argsort(points[:, j], kind="stable")
        column = points[idx, j]
        span = column[-1] - column[0]
        distance[idx[0]] = distance[idx[-1]] = np.inf
        if span > 0:
            distance[idx[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def order(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices from best to worst: rank, then crowding distance, then position."""
    pts = minimised(points, directions)
    ranks = np.array(pareto_ranks(pts, ["minimize"] * pts.shape[1]))
    crowd = np.zeros(len(pts))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distances(pts[members])
    return sorted(range(len(pts)), key=lambda i: (ranks[i], -crowd[i], i))


@dataclass
class _Rung:
    epochs: int
    trials: list[Hashable] = field(default_factory=list)
    values: list[tuple[float, ...]] = field(default_factory=list)


class ParetoHalving:
    """Decides, each time a trial reports, whether it trains on (see the module doc)."""

    def __init__(self, *, levels: Sequence[int], eta: int, directions: Sequence[str]) -> None:
        if eta < 2 or not levels or list(levels) != sorted(set(levels)) or levels[0] < 1:
            raise NasError(
                f"rungs need eta >= 2 and increasing epoch counts, got eta {eta}, {list(levels)}",
                field="search.early_stopping",
            )
        self.directions = tuple(directions)
        self.eta = eta
        self.rungs = [_Rung(r) for r in levels]

    @classmethod
    def geometric(
        cls, *, min_epochs: int, max_epochs: int, eta: int, directions: Sequence[str]
    ) -> ParetoHalving:
        """Rungs at ``min_epochs * eta**k`` below ``max_epochs`` (training runs); a table
        of fixed fidelities (NAS-Bench-201's 12 of 200 epochs) passes ``levels`` itself."""
        return cls(levels=rung_levels(min_epochs, max_epochs, eta), eta=eta, directions=directions)

    def report(self, trial: Hashable, epochs: int, objectives: Sequence[float]) -> bool:
        """Whether ``trial`` goes on after ``epochs`` epochs with these objective values
        (in ``directions`` order). Between rungs, and past the last, it always does."""
        rung = next((r for r in self.rungs if r.epochs == epochs), None)
        if rung is None:
            return True
        if len(objectives) != len(self.directions):
            raise ValueError(
                f"expected {len(self.directions)} objective values, got {len(objectives)}"
            )
        if trial in rung.trials:  # a retried report: keep the first decision's record
            position = rung.trials.index(trial)
        else:
            rung.trials.append(trial)
            rung.values.append(tuple(float(v) for v in objectives))
            position = len(rung.trials) - 1
        keep = math.ceil(len(rung.trials) / self.eta)
        return position in order(rung.values, self.directions)[:keep]

    def table(self) -> list[tuple[int, list[Hashable], list[tuple[float, ...]]]]:
        """Each rung's epochs, trials and their values, in arrival order (for reports)."""
        return [(r.epochs, list(r.trials), list(r.values)) for r in self.rungs]


@dataclass
class StudyHalving:
    """A study's halving and the reported metrics it ranks (those its Optuna study
    optimises, in the directions' order): what every executor asks as trials report."""

    halving: ParetoHalving
    metrics: tuple[str, ...]

    def goes_on(self, trial: Hashable, report: Mapping[str, Any]) -> bool:
        """Whether the trial that sent ``report`` (nas.search.trial: a ``running`` report
        after an epoch, then its final one) trains on."""
        if report.get("status") != "running":
            return True
        values = tuple(float(report[m]) for m in self.metrics)
        return self.halving.report(trial, int(report["epoch"]), values)


def for_study(study: StudyConfig) -> StudyHalving | None:
    """The halving a study's trials report to, or None: early stopping off, a training
    of ``halving_min_epochs`` epochs or fewer (no rung below its end), or a tabular study
    without its two fidelities. The rung of a tabular study: the table's 12 of 200 epochs."""
    s, obj = study.search, study.objective
    if not s.early_stopping:
        return None
    if study.tabular.benchmark:
        if not study.tabular.low_fidelity:
            return None
        levels: tuple[int, ...] = (LOW_EPOCHS,)
    elif study.train.epochs <= s.halving_min_epochs:
        return None
    else:
        levels = rung_levels(s.halving_min_epochs, study.train.epochs, s.halving_eta)
    halving = ParetoHalving(levels=levels, eta=s.halving_eta, directions=obj.directions)
    return StudyHalving(halving, obj.rules.metric_names(obj))
