"""Local search with restarts over categorical parameters (Pareto local search with
several objectives)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from nas.core.errors import NasError
from nas.core.pareto import pareto_front
from nas.search.samplers._categorical import (
    ORIGIN_KEY,
    PARENT_KEY,
    RUN_KEY,
    CategoricalSampler,
    Params,
    check_int,
)

__all__ = ["LocalSearchSampler"]


def _params_key(params: Mapping[str, Any]) -> Hashable:
    return tuple(sorted(params.items()))


class LocalSearchSampler(CategoricalSampler):
    """Local search with restarts over categorical parameters (White et al. 2021, "Local
    search is state of the art for NAS benchmarks"), best-first within a run.

    A run starts with ``n_startup`` random trials (the first run) or ``n_restart`` (each
    later one); then each trial is an unseen neighbour (one parameter changed) of the
    run's best trial so far. When the run's best has no unseen neighbour left, it is a
    local optimum: a new run starts.

    ``guided``: which neighbour first? The one a ridge regression on the one-hot
    encoded parameters of the completed trials (values clipped below at their 10th
    percentile, so failed networks do not dominate the fit) predicts best; ties in
    random order. Without it, a random unseen neighbour. On NAS-Bench-201 guidance helps
    a little at small budgets (benchmarks/README.md, "NAS-Bench-201 in tabular mode"). The run of each trial is noted on it (``RUN_KEY``),
    so the state lives in the study: parallel workers and resumed studies follow it.

    With several objectives it is Pareto local search (Paquete et al. 2004): after the
    ``n_startup`` random trials, each trial is an unseen neighbour of a member of the
    front of completed trials (a random member that still has unseen neighbours; a
    random trial when none has).

    ``key`` as for :class:`RegularizedEvolutionSampler`; without one, params are their
    own key (a network reachable by two params dicts may then be evaluated twice).
    """

    def __init__(
        self,
        *,
        n_startup: int = 10,
        n_restart: int = 3,
        seed: int | None = None,
        key: Callable[[Mapping[str, Any]], Hashable] | None = None,
        max_retries: int = 100,
        guided: bool = True,
        ridge: float = 1.0,
    ) -> None:
        check_int("n_startup", n_startup, 1, self._name)
        check_int("n_restart", n_restart, 1, self._name)
        if not ridge > 0:
            raise NasError(f"must be positive, got {ridge!r}", field="ridge", source=self._name)
        super().__init__(seed=seed, key=key or _params_key, max_retries=max_retries)
        self.n_startup = n_startup
        self.n_restart = n_restart
        self.guided = guided
        self.ridge = ridge

    multi_objective = True

    def _propose(self, study, trial, space, names, trials, complete, seen):  # type: ignore[override]
        if len(study.directions) > 1:
            return self._propose_pareto(study, trial, space, names, trials, complete, seen)
        runs = [t.system_attrs.get(RUN_KEY, 0) for t in trials if t.number != trial.number]
        run = max(runs, default=0)
        members = [
            t for t in trials if t.number != trial.number and t.system_attrs.get(RUN_KEY, 0) == run
        ]
        needed = self.n_startup if run == 0 else self.n_restart
        done = [t for t in complete if t.system_attrs.get(RUN_KEY, 0) == run]
        if len(members) < needed or not done:
            return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random", RUN_KEY: run}
        best = self._best(done, study.direction)
        score = self._surrogate(space, names, complete, study.direction) if self.guided else None
        child = self._neighbour_unseen(space, names, best.params, seen, score)
        if child is None:  # a local optimum: restart
            return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random", RUN_KEY: run + 1}
        return child, {ORIGIN_KEY: "neighbour", PARENT_KEY: best.number, RUN_KEY: run}

    def _propose_pareto(self, study, trial, space, names, trials, complete, seen):  # type: ignore[no-untyped-def]
        started = sum(t.number != trial.number for t in trials)
        if started < self.n_startup or not complete:
            return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random"}
        directions = [
            "maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in study.directions
        ]
        front = [complete[k] for k in pareto_front([t.values for t in complete], directions)]
        for k in self._rng.permutation(len(front)):
            centre = front[int(k)]
            child = self._neighbour_unseen(space, names, centre.params, seen)
            if child is not None:
                return child, {ORIGIN_KEY: "neighbour", PARENT_KEY: centre.number}
        return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random"}

    def _neighbour_unseen(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        centre: Mapping[str, Any],
        seen: set[Hashable] | None,
        score: Callable[[Params], float] | None = None,
    ) -> Params | None:
        """A neighbour of ``centre`` (one parameter changed) whose key is unseen: the
        best by ``score`` (higher first), else a random one; None when there is none."""
        neighbours = []
        for n in names:
            current = space[n].to_internal_repr(centre[n])
            for k, value in enumerate(space[n].choices):
                if k != current:
                    neighbours.append({**{m: centre[m] for m in names}, n: value})
        order = [neighbours[int(k)] for k in self._rng.permutation(len(neighbours))]
        if score is not None:
            order.sort(key=score, reverse=True)  # stable: ties keep the random order
        for child in order:
            if seen is None or self._key_of(child) not in seen:
                return child
        return None

    def _surrogate(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        complete: Sequence[FrozenTrial],
        direction: StudyDirection,
    ) -> Callable[[Params], float]:
        """Ridge regression of the (direction-signed) value on one-hot parameters."""
        offsets, width = {}, 0
        for n in names:
            offsets[n] = width
            width += len(space[n].choices)

        def encode(params: Mapping[str, Any]) -> np.ndarray:
            x = np.zeros(width)
            for n in names:
                x[offsets[n] + space[n].to_internal_repr(params[n])] = 1.0
            return x

        sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
        X = np.array([encode(t.params) for t in complete])
        y = sign * np.array([float(t.value) for t in complete])
        y = np.maximum(y, np.quantile(y, 0.1))
        y = y - y.mean()
        w = np.linalg.solve(X.T @ X + self.ridge * np.eye(width), X.T @ y)
        return lambda params: float(encode(params) @ w)
