"""What regularized evolution and local search share: the categorical search space
learnt from finished trials, a seeded random sampler for everything else, and skipping
params that stand for a network already evaluated (``key``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.core.errors import NasError
from nas.core.strict import is_int
from nas.search.samplers._dedup import SeenKeys, random_params

__all__ = ["ORIGIN_KEY", "PARENT_KEY", "RUN_KEY", "CategoricalSampler", "Params", "check_int"]

#: Trial system attributes: how the params came about ("random", "mutation",
#: "neighbour", "random-fallback") and, for a mutation or neighbour, the parent's
#: trial number; for local search, which restart (run) the trial belongs to.
ORIGIN_KEY = "rea:origin"
PARENT_KEY = "rea:parent"
RUN_KEY = "ls:run"

Params = dict[str, Any]


def check_int(name: str, value: Any, low: int, source: str) -> None:
    if not is_int(value) or value < low:
        raise NasError(f"must be an integer >= {low}, got {value!r}", field=name, source=source)


class CategoricalSampler(BaseSampler):
    """What REA and LS share: the categorical search space learnt from finished trials,
    a seeded random sampler for everything else, and dedup by ``key``."""

    def __init__(
        self,
        *,
        seed: int | None,
        key: Callable[[Mapping[str, Any]], Hashable] | None,
        max_retries: int,
    ) -> None:
        check_int("max_retries", max_retries, 1, self._name)
        if seed is not None and not is_int(seed):
            raise NasError(
                f"must be an integer or None, got {seed!r}", field="seed", source=self._name
            )
        self.max_retries = max_retries
        self._dedup = SeenKeys(key) if key is not None else None
        self._rng = np.random.default_rng(seed)
        self._independent = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()
        self._space_of: tuple[object, int] | None = None  # (storage, study id) of _space

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
        if self._dedup is not None:
            self._dedup.for_study(self._space_of)
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
        return random_params(self._rng, space, names)

    def _random_unseen(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        seen: set[Hashable] | None,
    ) -> Params:
        if seen is None or self._dedup is None:
            return self._random(space, names)
        return self._dedup.random_unseen(
            self._rng, space, names, seen, max_retries=self.max_retries, source=self._name
        )

    # -- dedup ------------------------------------------------------------------

    def _key_of(self, params: Mapping[str, Any]) -> Hashable:
        assert self._dedup is not None
        return self._dedup.key_of(params)

    def _seen(
        self, trials: Sequence[FrozenTrial], number: int, names: Sequence[str]
    ) -> set[Hashable] | None:
        return None if self._dedup is None else self._dedup.seen(trials, number, names)
