"""Which networks a study has already evaluated, by key: what every sampler that never
proposes a network twice (rea, ls, bananas, nsga2) asks before proposing."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial

from nas.core.errors import NasError

__all__ = ["SeenKeys", "random_params"]


def random_params(
    rng: np.random.Generator, space: Mapping[str, CategoricalDistribution], names: Sequence[str]
) -> dict[str, Any]:
    return {n: space[n].choices[int(rng.integers(len(space[n].choices)))] for n in names}


class SeenKeys:
    """``key(params) -> hashable`` with memos: a params dict's key is computed once, and
    a finished trial's key once per study (its params can no longer change)."""

    def __init__(self, key: Callable[[Mapping[str, Any]], Hashable]) -> None:
        self.key = key
        self._keys: dict[tuple[tuple[str, Any], ...], Hashable] = {}
        self._owner: object = None
        # (finished trial number, param names) -> key, for the study of _owner
        self._trial_keys: dict[tuple[int, tuple[str, ...]], Hashable] = {}

    def key_of(self, params: Mapping[str, Any]) -> Hashable:
        raw = tuple(sorted(params.items()))
        if raw not in self._keys:
            self._keys[raw] = self.key(params)
        return self._keys[raw]

    def for_study(self, owner: object) -> None:
        """Forget trial keys when the sampler moves to another study."""
        if owner != self._owner:
            self._owner = owner
            self._trial_keys = {}

    def seen(
        self, trials: Sequence[FrozenTrial], number: int, names: Sequence[str]
    ) -> set[Hashable]:
        """Keys of the ``names`` params of every trial but ``number`` (any state)."""
        seen: set[Hashable] = set()
        names = tuple(names)
        for t in trials:
            if t.number == number:
                continue
            if (t.number, names) in self._trial_keys:
                seen.add(self._trial_keys[t.number, names])
            elif all(n in t.params for n in names):
                key = self.key_of({n: t.params[n] for n in names})
                if t.state.is_finished():
                    self._trial_keys[t.number, names] = key
                seen.add(key)
        return seen

    def random_unseen(
        self,
        rng: np.random.Generator,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        seen: set[Hashable],
        *,
        max_retries: int,
        source: str,
    ) -> dict[str, Any]:
        """Random params whose key is not in ``seen``: up to ``max_retries`` draws, then
        (a nearly exhausted space) a walk over the whole space, choices shuffled."""
        for _ in range(max_retries):
            params = random_params(rng, space, names)
            if self.key_of(params) not in seen:
                return params
        shuffled = [
            [space[n].choices[int(k)] for k in rng.permutation(len(space[n].choices))]
            for n in names
        ]
        for values in itertools.product(*shuffled):
            params = dict(zip(names, values, strict=True))
            if self.key_of(params) not in seen:
                return params
        raise NasError(
            "every point of the search space has been evaluated (by key)",
            field="key",
            source=source,
        )
