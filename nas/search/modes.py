"""Objective modes: what a search optimises, found by name here and nowhere else.

A mode decides a study's directions, the score a trial reports, which candidates are
refused before training, how finished evaluations rank and which of them win. A new
mode is one class with ``@register_mode``; the study file's ``objective.mode``
choices and the contract tests (tests/search/test_modes.py) follow.

Plain numbers and evaluations only: no torch, Optuna or Ray here, so reading a study
file stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from nas.core.errors import NasError
from nas.core.objectives import METRICS, mnasnet_reward
from nas.core.pareto import pareto_ranks

if TYPE_CHECKING:
    from nas.search.results import Evaluation

__all__ = ["MODES", "ObjectiveMode", "get_mode", "register_mode"]


class ObjectiveSettings(Protocol):
    """The fields of ``nas.search.config.ObjectiveConfig`` a mode reads (a Protocol: the
    config imports this module, not the other way round)."""

    mode: str
    metrics: tuple[str, ...]
    latency_budget_ms: float
    reward_exponent: float


class ObjectiveMode:
    """One way of scoring a search. The defaults are a single objective, maximised:
    subclasses override what differs."""

    name: ClassVar[str]
    #: One line: what the mode optimises.
    summary: ClassVar[str]
    #: Several objectives at once: no single score to stop trials early on.
    multi_objective: ClassVar[bool] = False
    #: Needs ``latency_budget_ms`` > 0.
    needs_budget: ClassVar[bool] = False

    def check(self, obj: ObjectiveSettings) -> None:
        """Refuse settings this mode cannot work with (one line, naming the field)."""
        if self.needs_budget and obj.latency_budget_ms <= 0:
            raise NasError(
                f"{self.name} mode needs a positive latency budget", field="latency_budget_ms"
            )

    def directions(self, obj: ObjectiveSettings) -> tuple[str, ...]:
        """Optuna's direction for each reported metric, in ``metric_names`` order."""
        return ("maximize",)

    def metric_names(self, obj: ObjectiveSettings) -> tuple[str, ...]:
        """The trial metrics the Optuna study optimises (the dashboard labels its axes so)."""
        return ("objective",)

    def score(self, obj: ObjectiveSettings, accuracy: float, latency_ms: float) -> float:
        """The single value a trial reports as ``objective`` (early stopping reads it)."""
        return accuracy

    def latency_limit(self, obj: ObjectiveSettings) -> float | None:
        """A hard latency limit: candidates predicted over it are rejected before any
        training and never rank (None: no limit)."""
        return None

    def rejects(self, obj: ObjectiveSettings, latency_ms: float) -> bool:
        limit = self.latency_limit(obj)
        return limit is not None and latency_ms > limit

    def ranked(self, obj: ObjectiveSettings, done: Sequence[Evaluation]) -> list[Evaluation]:
        """Complete evaluations ``done``, best first (those over the limit left out)."""
        kept = [e for e in done if not self.rejects(obj, e.latency_ms)]
        return sorted(
            kept, key=lambda e: self.score(obj, e.val_accuracy, e.latency_ms), reverse=True
        )

    def winners(
        self, obj: ObjectiveSettings, evaluations: Sequence[Evaluation]
    ) -> list[Evaluation]:
        """What a search keeps: its best complete evaluation."""
        return self.ranked(obj, [e for e in evaluations if e.status == "complete"])[:1]


MODES: dict[str, ObjectiveMode] = {}

M = TypeVar("M", bound=type[ObjectiveMode])


def register_mode(cls: M) -> M:
    """Class decorator: add one instance of the mode to the registry under ``cls.name``."""
    if cls.name in MODES:
        raise RuntimeError(f"objective mode {cls.name!r} registered twice")
    MODES[cls.name] = cls()
    return cls


def get_mode(name: str, *, field: str = "mode") -> ObjectiveMode:
    try:
        return MODES[name]
    except KeyError:
        raise NasError(f"unknown mode {name!r} (known: {', '.join(MODES)})", field=field) from None


@register_mode
class Pareto(ObjectiveMode):
    name = "pareto"
    summary = "accuracy up, latency (and optionally params/MACs) down: a front of trade-offs"
    multi_objective = True

    def check(self, obj: ObjectiveSettings) -> None:
        if "accuracy" not in obj.metrics or len(obj.metrics) < 2:
            raise NasError("pareto mode needs accuracy and at least one cost", field="metrics")

    def directions(self, obj: ObjectiveSettings) -> tuple[str, ...]:
        return tuple(METRICS[m] for m in obj.metrics)

    def metric_names(self, obj: ObjectiveSettings) -> tuple[str, ...]:
        return tuple(obj.metrics)

    def ranked(self, obj: ObjectiveSettings, done: Sequence[Evaluation]) -> list[Evaluation]:
        """By non-dominated rank, then accuracy."""
        points = [[e.metric(m) for m in obj.metrics] for e in done]
        ranks = pareto_ranks(points, self.directions(obj))
        order = sorted(range(len(done)), key=lambda i: (ranks[i], -done[i].val_accuracy))
        return [done[i] for i in order]

    def winners(
        self, obj: ObjectiveSettings, evaluations: Sequence[Evaluation]
    ) -> list[Evaluation]:
        """The front, read as its trade-off: cheapest first (by the cost metrics in their
        order), each next member costlier and more accurate; ties by accuracy, then id."""
        from nas.search.results import front_of  # the evaluations table: not for config

        costs = [m for m in obj.metrics if METRICS[m] == "minimize"]

        def along(e: Evaluation) -> tuple[float | str, ...]:
            return (*(e.metric(m) for m in costs), -e.val_accuracy, e.arch_id)

        return sorted(front_of(evaluations, obj.metrics), key=along)


@register_mode
class Budget(ObjectiveMode):
    name = "budget"
    summary = "accuracy up, subject to latency <= latency_budget_ms"
    needs_budget = True

    def latency_limit(self, obj: ObjectiveSettings) -> float | None:
        return obj.latency_budget_ms


@register_mode
class Reward(ObjectiveMode):
    name = "reward"
    summary = "MnasNet's reward: accuracy * (latency / latency_budget_ms) ** reward_exponent"
    needs_budget = True

    def score(self, obj: ObjectiveSettings, accuracy: float, latency_ms: float) -> float:
        return mnasnet_reward(accuracy, latency_ms, obj.latency_budget_ms, obj.reward_exponent)


@register_mode
class Accuracy(ObjectiveMode):
    name = "accuracy"
    summary = "accuracy alone (a compound-scaling grid, or a plain AutoML search)"
