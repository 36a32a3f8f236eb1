"""The proxy pre-filter: several candidates per proposal, scored by a zero-cost proxy,
only the best trained (``[search] prefilter = { proxy, keep, of }``).

Inside Optuna's define-by-run, for a trial the sampler proposes: candidate 0 is the
sampler's own proposal (read from it without being recorded), candidates 1..of-1 are
drawn uniformly from the space (seeded by the search seed and the trial number). All are
scored on one seeded minibatch; the best becomes the trial's architecture and is
recorded as its parameters (so the sampler learns from the network really trained), and
the next ``keep - 1`` are queued on the study as fixed trials, which later trials take
as they are. Training counts stay what ``search.trials`` says: every trial trains one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.model.arch import Architecture
from nas.proxies import Batch, score
from nas.space.searchspace import SearchSpace, decode, walk

__all__ = ["ATTRS", "Prefilter", "queued"]

#: The user attributes a pre-filtered trial carries (the dashboard and report show them).
ATTRS = ("prefilter_proxy", "prefilter_value", "prefilter_rank", "prefilter_of")


def queued(trial: Any) -> bool:
    """Whether the trial was queued with fixed parameters (by an earlier pre-filter)."""
    return bool(trial.storage.get_trial(trial._trial_id).system_attrs.get("fixed_params"))


@dataclass(frozen=True, eq=False)
class Prefilter:
    """What a define-by-run function needs to pre-filter (plain and picklable: Tune
    checkpoints its searcher). ``batch`` None: a proxy that reads the architecture only."""

    proxy: str
    keep: int
    of: int
    batch: Batch | None
    seed: int

    def fix_best(self, space: SearchSpace, trial: Any) -> None:
        """Score ``of`` candidates, fix the best's parameters on ``trial`` (its next
        suggestions return them) and queue the next ``keep - 1`` on the study."""
        rng = np.random.default_rng([self.seed, trial.number])
        proposals = [walk(space, _Proposal(trial))] + [
            walk(space, lambda d: d.choices[int(rng.integers(len(d.choices)))])
            for _ in range(self.of - 1)
        ]
        values = [self.value(decode(space, p)) for p in proposals]
        # Best first; a tie keeps the earlier candidate, the sampler's own before a draw.
        order = sorted(range(self.of), key=lambda i: -values[i])
        for rank, i in enumerate(order[1 : self.keep], start=2):
            trial.study.enqueue_trial(
                proposals[i], user_attrs=self._attrs(values[i], rank), skip_if_exists=False
            )
        best = order[0]
        # Optuna's own mechanism for enqueued trials: suggestions return these values and
        # are recorded as usual (only the winner's dimensions, none of the others').
        _optuna_trial(trial)._fixed_params = dict(proposals[best])
        for key, value in self._attrs(values[best], 1).items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("prefilter_sampler_won", best == 0)

    def value(self, arch: Architecture) -> float:
        """The proxy's score of ``arch`` (NaN: lowest, a candidate never chosen over one
        that scored)."""
        v = score(arch, self.batch, [self.proxy], seed=self.seed)[self.proxy].value
        return v if not math.isnan(v) else -math.inf

    def _attrs(self, value: float, rank: int) -> dict[str, Any]:
        shown = value if math.isfinite(value) else str(value)  # JSON has no inf
        return dict(zip(ATTRS, (self.proxy, shown, rank, self.of), strict=True))


def _optuna_trial(trial: Any) -> Any:
    """The Optuna trial itself: Ray Tune's OptunaSearch hands the define-by-run function
    a wrapper that passes reads and suggestions through to it (in ``ot_trial``) but
    keeps attributes set on it to itself, where Optuna's suggestions never see them."""
    return getattr(trial, "ot_trial", trial)


@dataclass(frozen=True)
class _Proposal:
    """Asks the trial's sampler for a dimension's value without recording it: what
    ``trial.suggest_categorical`` would return, as Optuna's ``Trial._suggest`` decides."""

    trial: Any

    def __call__(self, d: Any) -> Any:
        from optuna.distributions import CategoricalDistribution

        t = self.trial
        dist = CategoricalDistribution(list(d.choices))
        relative = t.relative_params
        if d.label in relative:
            return relative[d.label]
        frozen = t.storage.get_trial(t._trial_id)
        return t.study.sampler.sample_independent(t.study, frozen, d.label, dist)
