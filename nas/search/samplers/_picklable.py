"""Optuna's NSGA-II, made picklable for Ray Tune and kept from re-proposing networks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import NSGAIISampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from nas.search.samplers._categorical import check_int
from nas.search.samplers._dedup import SeenKeys

__all__ = ["PicklableNSGAIISampler"]


class PicklableNSGAIISampler(NSGAIISampler):
    """Optuna's NSGA-II, picklable again: Ray Tune pickles its searcher (with the
    sampler) when a Tuner starts, and Optuna 5.1's genetic samplers hold a
    ``threading.Lock`` (``_thread_lock``) that pickle refuses. The lock guards a
    per-process cache, so a copy gets a fresh one.

    ``key(params) -> hashable`` (optional) names the network the categorical params
    stand for. With it, no trial gets categorical params whose key an earlier trial had:
    the first generation is drawn at random until unseen, and a child (crossover, then
    Optuna's uniform mutation, done here so the whole child is known) is bred again up
    to ``max_retries`` times, then drawn at random until unseen. Plain NSGA-II spends
    most of a short NAS budget re-evaluating its parents' networks (the benchmarks'
    "NAS-Bench-201 in tabular mode"). Other parameters are left to NSGA-II as they are.
    """

    def __init__(
        self,
        *,
        key: Callable[[Mapping[str, Any]], Hashable] | None = None,
        max_retries: int = 100,
        **kwargs: Any,
    ) -> None:
        check_int("max_retries", max_retries, 1, type(self).__name__)
        super().__init__(**kwargs)
        self.max_retries = max_retries
        self._dedup = SeenKeys(key) if key is not None else None
        self._draws = np.random.default_rng(kwargs.get("seed"))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()

    def reseed_rng(self) -> None:
        super().reseed_rng()
        self._draws = np.random.default_rng()

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        names = sorted(n for n, d in search_space.items() if isinstance(d, CategoricalDistribution))
        if self._dedup is None or not names:
            return super().sample_relative(study, trial, search_space)
        self._dedup.for_study((study._storage, study._study_id))
        seen = self._dedup.seen(study.get_trials(deepcopy=False), trial.number, names)
        space: dict[str, CategoricalDistribution] = {n: search_space[n] for n in names}  # type: ignore[misc]
        parents = self.get_parent_population(study, self.get_trial_generation(study, trial))
        if parents:
            for _ in range(self.max_retries):
                child = self._child_generation_strategy(study, search_space, parents)
                for n in names:  # left out of the child: to mutate (uniformly, as Optuna)
                    if n not in child:
                        child[n] = self._draw(space[n])
                if self._dedup.key_of({n: child[n] for n in names}) not in seen:
                    return child
            others = {n: v for n, v in child.items() if n not in space}
            return {**others, **self._random_unseen(space, names, seen)}
        return self._random_unseen(space, names, seen)

    def _draw(self, distribution: CategoricalDistribution) -> Any:
        return distribution.choices[int(self._draws.integers(len(distribution.choices)))]

    def _random_unseen(
        self, space: Mapping[str, CategoricalDistribution], names: list[str], seen: set[Hashable]
    ) -> dict[str, Any]:
        assert self._dedup is not None
        return self._dedup.random_unseen(
            self._draws,
            space,
            names,
            seen,
            max_retries=self.max_retries,
            source=type(self).__name__,
        )
