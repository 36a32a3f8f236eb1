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

from nas.search.config import ObjectiveConfig, StudyConfig
from nas.search.results import Evaluation, budget_key
from nas.train.config import TrainConfig

__all__ = ["budget_of", "ranked", "sub_study", "train_config", "trial_objective", "winners"]


def trial_objective(
    study: StudyConfig, accuracy: float, latency_ms: float, params: int, macs: int
) -> dict[str, float]:
    """The metrics a trial reports: the study's objective values under their names."""
    obj = study.objective
    return {
        "accuracy": accuracy,
        "latency": latency_ms,
        "params": float(params),
        "macs": float(macs),
        "objective": obj.rules.score(obj, accuracy, latency_ms),
    }


def train_config(study: StudyConfig, hp: dict[str, Any]) -> TrainConfig:
    changes = {k: (int(v) if k == "batch_size" else float(v)) for k, v in hp.items()}
    return dataclasses.replace(study.train, **changes)


def _budget(study: StudyConfig, cfg: TrainConfig, resolution: int) -> str:
    """What makes two evaluations of one architecture interchangeable."""
    if study.tabular.benchmark:
        return budget_key(benchmark=study.tabular.benchmark, split="cifar10-valid")
    # The data part keeps the key ``dataset`` it had before the field was renamed, so
    # evaluations stored under earlier versions are still reused.
    data = {("dataset" if k == "name" else k): v for k, v in dataclasses.asdict(study.data).items()}
    return budget_key(data=data, train=cfg, resolution=resolution)


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
    """The complete evaluations, best first, as the study's objective mode ranks them
    (nas.search.modes: pareto by non-dominated rank, then accuracy; the others by their
    score, those over a latency limit left out)."""
    obj = study.objective
    return obj.rules.ranked(obj, [e for e in evaluations if e.status == "complete"])


def winners(study: StudyConfig, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """What the study keeps of ``evaluations``: the front (pareto mode, cheapest first) or
    the best complete one (the others)."""
    obj = study.objective
    return obj.rules.winners(obj, evaluations)
