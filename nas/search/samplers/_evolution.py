"""Regularized (aging) evolution over categorical parameters."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from nas.core.errors import NasError
from nas.search.samplers._categorical import (
    ORIGIN_KEY,
    PARENT_KEY,
    CategoricalSampler,
    Params,
    check_int,
)

__all__ = ["RegularizedEvolutionSampler"]


class RegularizedEvolutionSampler(CategoricalSampler):
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
        check_int("population_size", population_size, 1, self._name)
        check_int("sample_size", sample_size, 1, self._name)
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
