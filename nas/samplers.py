"""Optuna samplers that Optuna does not ship: regularized evolution (REA).

Random search, TPE and NSGA-II come from ``optuna.samplers`` as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError
from nas.strict import is_int

__all__ = ["ORIGIN_KEY", "PARENT_KEY", "RegularizedEvolutionSampler"]

_NAME = "RegularizedEvolutionSampler"
#: Trial system attributes: how the params came about ("random", "mutation",
#: "random-fallback") and, for a mutation, the parent's trial number.
ORIGIN_KEY = "rea:origin"
PARENT_KEY = "rea:parent"

Params = dict[str, Any]


class RegularizedEvolutionSampler(BaseSampler):
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
        for name, value, low in (
            ("population_size", population_size, 1),
            ("sample_size", sample_size, 1),
            ("max_retries", max_retries, 1),
        ):
            if not is_int(value) or value < low:
                raise NasError(
                    f"must be an integer >= {low}, got {value!r}", field=name, source=_NAME
                )
        if sample_size > population_size:
            raise NasError(
                f"must be <= population_size ({population_size}), got {sample_size}",
                field="sample_size",
                source=_NAME,
            )
        if seed is not None and not is_int(seed):
            raise NasError(f"must be an integer or None, got {seed!r}", field="seed", source=_NAME)
        self.population_size = population_size
        self.sample_size = sample_size
        self.max_retries = max_retries
        self._key = key
        self._keys: dict[tuple[tuple[str, Any], ...], Hashable] = {}
        self._rng = np.random.default_rng(seed)
        self._independent = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()
        self._space_of: tuple[object, int] | None = None  # (storage, study id) of _space
        # (finished trial number, param names) -> key, for the study of _space_of
        self._trial_keys: dict[tuple[int, tuple[str, ...]], Hashable] = {}

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()

    # -- BaseSampler API --------------------------------------------------------

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if len(study.directions) > 1:
            raise NasError(
                "multi-objective studies are not supported (use NSGA-II)",
                field="directions",
                source=_NAME,
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
        if len(complete) < self.population_size:
            params, origin, parent = self._random_unseen(space, names, seen), "random", None
        else:
            parent = self._tournament(complete[-self.population_size :], study.direction)
            params, origin = self._mutate_unseen(space, names, parent.params, seen)
        study._storage.set_trial_system_attr(trial._trial_id, ORIGIN_KEY, origin)
        if parent is not None and origin == "mutation":
            study._storage.set_trial_system_attr(trial._trial_id, PARENT_KEY, parent.number)
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    # -- evolution --------------------------------------------------------------

    def _tournament(
        self, population: Sequence[FrozenTrial], direction: StudyDirection
    ) -> FrozenTrial:
        picks = self._rng.choice(len(population), size=self.sample_size, replace=False)
        sample = [population[int(i)] for i in picks]
        sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
        return max(sample, key=lambda t: sign * float(t.value))  # first of equals wins

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
            "every point of the search space has been evaluated (by key)", field="key", source=_NAME
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
