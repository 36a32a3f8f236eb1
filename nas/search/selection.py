"""Which evaluations win, and under what names: the metrics a trial reports for the
study's objective, the ranking and the front, the budget that makes two evaluations
interchangeable, and the sub-studies (confirmation, scaling) of fixed networks.

Read by the search, the confirmation, the report and ``nas scale``; it wires nothing
(no Ray), so reading a study's outcome does not start a cluster's worth of imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from nas.core.objectives import METRICS, mnasnet_reward, pareto_ranks
from nas.search.config import ObjectiveConfig, StudyConfig
from nas.search.results import Evaluation, budget_key, front_of
from nas.train.config import TrainConfig

__all__ = ["budget_of", "ranked", "sub_study", "train_config", "trial_objective", "winners"]


def trial_objective(
    study: StudyConfig, accuracy: float, latency_ms: float, params: int, macs: int
) -> dict[str, float]:
    """The metrics a trial reports: the study's objective values under their names."""
    obj = study.objective
    values = {
        "accuracy": accuracy,
        "latency": latency_ms,
        "params": float(params),
        "macs": float(macs),
    }
    if obj.mode == "reward":
        values["objective"] = mnasnet_reward(
            accuracy, latency_ms, obj.latency_budget_ms, obj.reward_exponent
        )
    else:
        values["objective"] = accuracy
    return values


def train_config(study: StudyConfig, hp: dict[str, Any]) -> TrainConfig:
    changes = {k: (int(v) if k == "batch_size" else float(v)) for k, v in hp.items()}
    return dataclasses.replace(study.train, **changes)


def _budget(study: StudyConfig, cfg: TrainConfig, resolution: int) -> str:
    """What makes two evaluations of one architecture interchangeable."""
    if study.tabular.benchmark:
        return budget_key(benchmark=study.tabular.benchmark, split="cifar10-valid")
    return budget_key(data=study.data, train=cfg, resolution=resolution)


def budget_of(study: StudyConfig, hp: Mapping[str, Any], resolution: int) -> str:
    """The budget a network trains under with searched hyperparameters ``hp``."""
    return _budget(study, train_config(study, dict(hp)), resolution)


def sub_study(study: StudyConfig, suffix: str, **changes: Any) -> StudyConfig:
    """A study of its own for a batch of fixed networks (``run_trials(candidates=...)``):
    accuracy only, every trial run to the end (no early stopping), the same data, recipe
    (``changes`` aside), storage and cluster."""
    return dataclasses.replace(
        study,
        name=f"{study.name}-{suffix}",
        objective=ObjectiveConfig(mode="accuracy", metrics=("accuracy",)),
        search=dataclasses.replace(study.search, early_stopping=False),
        hyperparameters=(),
        **changes,
    )


def ranked(study: StudyConfig, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """The complete evaluations, best first: in pareto mode by non-dominated rank, then
    accuracy; in the others by the objective (budget mode: those within the budget)."""
    obj = study.objective
    done = [e for e in evaluations if e.status == "complete"]
    if obj.mode == "budget":
        done = [e for e in done if e.latency_ms <= obj.latency_budget_ms]
    if obj.mode == "pareto":
        points = [[e.metric(m) for m in obj.metrics] for e in done]
        ranks = pareto_ranks(points, [METRICS[m] for m in obj.metrics])
        order = sorted(range(len(done)), key=lambda i: (ranks[i], -done[i].val_accuracy))
        return [done[i] for i in order]

    def objective(e: Evaluation) -> float:
        return trial_objective(study, e.val_accuracy, e.latency_ms, e.params, e.macs)["objective"]

    return sorted(done, key=objective, reverse=True)


def winners(study: StudyConfig, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """The front of ``evaluations`` (pareto mode) or their best complete one (the others).

    The front reads as its trade-off: cheapest first (by the objective's cost metrics in
    their order), each next member costlier and more accurate; ties by accuracy, then id.
    """
    if study.objective.mode == "pareto":
        metrics = study.objective.metrics
        costs = [m for m in metrics if METRICS[m] == "minimize"]

        def along(e: Evaluation) -> tuple[float, ...]:
            return (*(e.metric(m) for m in costs), -e.val_accuracy, e.arch_id)

        return sorted(front_of(evaluations, metrics), key=along)
    return ranked(study, evaluations)[:1]
