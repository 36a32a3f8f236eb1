"""Optuna samplers that Optuna does not ship: regularized evolution (REA) and local
search with restarts (LS), both over categorical parameters, both able to skip
params that stand for a network already evaluated (``key``).

Random search, TPE and NSGA-II come from ``optuna.samplers`` as they are.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.core.errors import NasError
from nas.core.strict import is_int

__all__ = [
    "ORIGIN_KEY",
    "PARENT_KEY",
    "RUN_KEY",
    "LocalSearchSampler",
    "PicklableNSGAIISampler",
    "RegularizedEvolutionSampler",
]

#: Trial system attributes: how the params came about ("random", "mutation",
#: "neighbour", "random-fallback") and, for a mutation or neighbour, the parent's
#: trial number; for local search, which restart (run) the trial belongs to.
ORIGIN_KEY = "rea:origin"
PARENT_KEY = "rea:parent"
RUN_KEY = "ls:run"

Params = dict[str, Any]


def _check_int(name: str, value: Any, low: int, source: str) -> None:
    if not is_int(value) or value < low:
        raise NasError(f"must be an integer >= {low}, got {value!r}", field=name, source=source)


class _CategoricalSampler(BaseSampler):
    """What REA and LS share: the categorical search space learnt from finished trials,
    a seeded random sampler for everything else, and dedup by ``key``."""

    def __init__(
        self,
        *,
        seed: int | None,
        key: Callable[[Mapping[str, Any]], Hashable] | None,
        max_retries: int,
    ) -> None:
        _check_int("max_retries", max_retries, 1, self._name)
        if seed is not None and not is_int(seed):
            raise NasError(
                f"must be an integer or None, got {seed!r}", field="seed", source=self._name
            )
        self.max_retries = max_retries
        self._key = key
        self._keys: dict[tuple[tuple[str, Any], ...], Hashable] = {}
        self._rng = np.random.default_rng(seed)
        self._independent = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()
        self._space_of: tuple[object, int] | None = None  # (storage, study id) of _space
        # (finished trial number, param names) -> key, for the study of _space_of
        self._trial_keys: dict[tuple[int, tuple[str, ...]], Hashable] = {}

    @property
    def _name(self) -> str:
        return type(self).__name__

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()

    # -- BaseSampler API --------------------------------------------------------

    #: Whether the sampler handles several objectives.
    multi_objective: bool = False

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if len(study.directions) > 1 and not self.multi_objective:
            raise NasError(
                "multi-objective studies are not supported (use NSGA-II)",
                field="directions",
                source=self._name,
            )
        # One incremental search space per study (in-memory studies share id 0).
        owner = self._space_of
        if owner is None or owner[0] is not study._storage or owner[1] != study._study_id:
            self._space = IntersectionSearchSpace()
            self._space_of = (study._storage, study._study_id)
            self._trial_keys = {}
        return {
            name: d
            for name, d in self._space.calculate(study).items()
            if isinstance(d, CategoricalDistribution)
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        space: dict[str, CategoricalDistribution] = dict(search_space)  # type: ignore[arg-type]
        names = sorted(space)
        trials = study.get_trials(deepcopy=False)
        seen = self._seen(trials, trial.number, names)
        complete = sorted(
            (
                t
                for t in trials
                if t.state == TrialState.COMPLETE and all(n in t.params for n in names)
            ),
            key=lambda t: (t.datetime_complete or datetime.min, t.number),
        )
        params, attrs = self._propose(study, trial, space, names, trials, complete, seen)
        for key, value in attrs.items():
            study._storage.set_trial_system_attr(trial._trial_id, key, value)
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def _propose(
        self,
        study: Study,
        trial: FrozenTrial,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        trials: Sequence[FrozenTrial],
        complete: Sequence[FrozenTrial],
        seen: set[Hashable] | None,
    ) -> tuple[Params, dict[str, Any]]:
        """The params of ``trial`` and the system attributes to note on it."""
        raise NotImplementedError

    def _best(self, candidates: Sequence[FrozenTrial], direction: StudyDirection) -> FrozenTrial:
        sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
        return max(candidates, key=lambda t: sign * float(t.value))  # first of equals wins

    def _random(self, space: Mapping[str, CategoricalDistribution], names: Sequence[str]) -> Params:
        return {n: space[n].choices[int(self._rng.integers(len(space[n].choices)))] for n in names}

    def _random_unseen(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        seen: set[Hashable] | None,
    ) -> Params:
        params = self._random(space, names)
        if seen is None:
            return params
        for _ in range(self.max_retries):
            if self._key_of(params) not in seen:
                return params
            params = self._random(space, names)
        # Nearly exhausted: walk the whole space, each parameter's choices shuffled.
        shuffled = [
            [space[n].choices[int(k)] for k in self._rng.permutation(len(space[n].choices))]
            for n in names
        ]
        for values in itertools.product(*shuffled):
            params = dict(zip(names, values, strict=True))
            if self._key_of(params) not in seen:
                return params
        raise NasError(
            "every point of the search space has been evaluated (by key)",
            field="key",
            source=self._name,
        )

    # -- dedup ------------------------------------------------------------------

    def _key_of(self, params: Mapping[str, Any]) -> Hashable:
        assert self._key is not None
        raw = tuple(sorted(params.items()))
        if raw not in self._keys:
            self._keys[raw] = self._key(params)
        return self._keys[raw]

    def _seen(
        self, trials: Sequence[FrozenTrial], number: int, names: Sequence[str]
    ) -> set[Hashable] | None:
        if self._key is None:
            return None
        seen: set[Hashable] = set()
        names = tuple(names)
        for t in trials:
            if t.number == number:
                continue
            if (t.number, names) in self._trial_keys:
                seen.add(self._trial_keys[t.number, names])
            elif all(n in t.params for n in names):
                key = self._key_of({n: t.params[n] for n in names})
                if t.state.is_finished():  # its params can no longer change
                    self._trial_keys[t.number, names] = key
                seen.add(key)
        return seen


class RegularizedEvolutionSampler(_CategoricalSampler):
    """Regularized (aging) evolution, Real et al. 2019, over categorical parameters.

    Until ``population_size`` trials have completed, params are drawn at random. After
    that, each trial takes ``sample_size`` random trials of the population (the last
    ``population_size`` completed trials: the oldest die), picks the best by the study's
    direction, and changes one of its parameters (one that has a choice) to another
    value drawn uniformly.

    ``key(params) -> hashable`` names the network a params dict stands for. With it, no
    trial gets params whose key an earlier trial (of any state) already had: a mutation
    is retried up to ``max_retries`` times, then params are drawn at random until unseen
    (and, if draws keep failing, taken from a walk over the whole space). The key sees
    the categorical parameters only.

    Parameters that are not categorical, and every parameter of the first trial (the
    search space is known once one trial completes), are drawn by a seeded
    :class:`optuna.samplers.RandomSampler`. Single-objective studies only.
    """

    def __init__(
        self,
        *,
        population_size: int = 50,
        sample_size: int = 10,
        seed: int | None = None,
        key: Callable[[Mapping[str, Any]], Hashable] | None = None,
        max_retries: int = 100,
    ) -> None:
        _check_int("population_size", population_size, 1, self._name)
        _check_int("sample_size", sample_size, 1, self._name)
        if sample_size > population_size:
            raise NasError(
                f"must be <= population_size ({population_size}), got {sample_size}",
                field="sample_size",
                source=self._name,
            )
        super().__init__(seed=seed, key=key, max_retries=max_retries)
        self.population_size = population_size
        self.sample_size = sample_size

    def _propose(self, study, trial, space, names, trials, complete, seen):  # type: ignore[override]
        if len(complete) < self.population_size:
            return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random"}
        parent = self._tournament(complete[-self.population_size :], study.direction)
        params, origin = self._mutate_unseen(space, names, parent.params, seen)
        attrs: dict[str, Any] = {ORIGIN_KEY: origin}
        if origin == "mutation":
            attrs[PARENT_KEY] = parent.number
        return params, attrs

    # -- evolution --------------------------------------------------------------

    def _tournament(
        self, population: Sequence[FrozenTrial], direction: StudyDirection
    ) -> FrozenTrial:
        picks = self._rng.choice(len(population), size=self.sample_size, replace=False)
        return self._best([population[int(i)] for i in picks], direction)

    def _mutate(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        parent: Mapping[str, Any],
    ) -> Params | None:
        mutable = [n for n in names if len(space[n].choices) > 1]
        if not mutable:
            return None
        name = mutable[int(self._rng.integers(len(mutable)))]
        choices = space[name].choices
        current = space[name].to_internal_repr(parent[name])
        others = [k for k in range(len(choices)) if k != current]
        child = {n: parent[n] for n in names}
        child[name] = choices[others[int(self._rng.integers(len(others)))]]
        return child

    def _mutate_unseen(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        parent: Mapping[str, Any],
        seen: set[Hashable] | None,
    ) -> tuple[Params, str]:
        for _ in range(self.max_retries):
            child = self._mutate(space, names, parent)
            if child is None:
                break
            if seen is None or self._key_of(child) not in seen:
                return child, "mutation"
        if seen is None:  # nothing to mutate: every parameter has one choice
            return {n: parent[n] for n in names}, "mutation"
        return self._random_unseen(space, names, seen), "random-fallback"


def _params_key(params: Mapping[str, Any]) -> Hashable:
    return tuple(sorted(params.items()))


class LocalSearchSampler(_CategoricalSampler):
    """Local search with restarts over categorical parameters (White et al. 2021, "Local
    search is state of the art for NAS benchmarks"), best-first within a run.

    A run starts with ``n_startup`` random trials (the first run) or ``n_restart`` (each
    later one); then each trial is an unseen neighbour (one parameter changed) of the
    run's best trial so far. When the run's best has no unseen neighbour left, it is a
    local optimum: a new run starts.

    ``guided``: which neighbour first? The one a ridge regression on the one-hot
    encoded parameters of the completed trials (values clipped below at their 10th
    percentile, so failed networks do not dominate the fit) predicts best; ties in
    random order. Without it, a random unseen neighbour. On NAS-Bench-201 guidance
    took the mean test accuracy at 50 queries from 94.19 to about 94.23
    (benchmarks/README.md). The run of each trial is noted on it (``RUN_KEY``),
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
        _check_int("n_startup", n_startup, 1, self._name)
        _check_int("n_restart", n_restart, 1, self._name)
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
        signs = np.array([1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions])
        values = np.array([t.values for t in complete], dtype=float) * signs
        # Non-dominated (all objectives turned to maximise); equal points all stay.
        better_eq = (values[:, None, :] >= values[None, :, :]).all(axis=2)
        strictly = (values[:, None, :] > values[None, :, :]).any(axis=2)
        dominated = (better_eq & strictly).any(axis=0)
        front = [complete[int(k)] for k in np.flatnonzero(~dominated)]
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


class PicklableNSGAIISampler(NSGAIISampler):
    """Optuna's NSGA-II, picklable again: Ray Tune pickles its searcher (with the
    sampler) when a Tuner starts, and Optuna 5.1's genetic samplers hold a
    ``threading.Lock`` (``_thread_lock``) that pickle refuses. The lock guards a
    per-process cache, so a copy gets a fresh one."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()
