"""Which networks a study has already evaluated, by key: what every sampler that never
proposes a network twice (rea, ls, bananas, nsga2) asks before proposing."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from optuna.trial import FrozenTrial

__all__ = ["SeenKeys"]


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
