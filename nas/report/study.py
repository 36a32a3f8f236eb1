"""What a study's page shows, read from its storage: evaluations, front, progress, ops.

Reads our own evaluations table (``nas.search.results``), which knows what Optuna does
not (a trial Ray stopped early, a diverged one, a reused network, pooled confirmations),
and what ``nas search`` and ``nas scale`` published on the Optuna study. Plain data, no
plotting: the figures are drawn from it in ``nas.report.figures``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.core.errors import NasError
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import dominates, hypervolume_2d
from nas.search.config import StudyConfig
from nas.search.results import Evaluation, EvaluationStore, count_trials

__all__ = [
    "Progress",
    "Repeats",
    "StudyReport",
    "gather",
    "op_shares",
    "optuna_study",
    "progress",
    "repeats",
]


@dataclass(frozen=True)
class StudyReport:
    """What the page shows, read from the storage at one moment."""

    study: str
    mode: str
    #: The study's own evaluations, oldest first.
    evaluations: tuple[Evaluation, ...]
    #: What the front is chosen from (confirmed candidates pooled, when confirmed).
    final: tuple[Evaluation, ...]
    #: Whether ``final`` holds pooled confirmations (else it is ``evaluations``).
    confirmed: bool
    #: The front (pareto mode) or the best evaluation (the others).
    front: tuple[Evaluation, ...]
    #: front.json's rows as stored on the Optuna study by ``nas search`` (test accuracy,
    #: measured latency, export); empty while the search runs.
    members: tuple[Mapping[str, Any], ...]
    latency_budget_ms: float | None
    #: What `nas scale` published for this study (family.json's content), if it ran.
    family: Mapping[str, Any] | None = None
    #: The study's finished trials (Optuna's COMPLETE ones, early-stopped included).
    trials: int = 0


def gather(study: StudyConfig) -> StudyReport:
    """Read the study's evaluations, front and published front members from its storage."""
    from optuna.trial import TrialState

    from nas.core.db import optuna_storage
    from nas.search.confirm import final_evaluations
    from nas.search.selection import sub_study, winners

    store = EvaluationStore(study.search.storage)
    own = store.of_study(study.name)
    storage = optuna_storage(study.search.storage)
    family = _published(storage, sub_study(study, "scale").name, "family")
    if not own and not family:
        raise NasError(
            f"study {study.name} has no evaluations in {study.search.storage}: run "
            "`nas search` (or `nas scale`) first",
            field="study",
            source=study.source,
        )
    final = final_evaluations(study, store)
    o_study = optuna_study(storage, study.name)
    members = tuple((o_study.user_attrs.get("front") if o_study else None) or ())
    obj = study.objective
    return StudyReport(
        study=study.name,
        mode=obj.mode,
        evaluations=tuple(own),
        final=tuple(final),
        confirmed=final != own,
        front=tuple(winners(study, final)),
        members=members,
        latency_budget_ms=obj.latency_budget_ms if obj.mode == "budget" else None,
        family=family,
        trials=count_trials(storage, study.name, TrialState.COMPLETE) if o_study else 0,
    )


def optuna_study(storage: Any, name: str) -> Any:
    """Optuna study ``name`` in ``storage``; None when it is not there."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _published(storage: Any, name: str, key: str) -> Any:
    """User attribute ``key`` of Optuna study ``name`` (what ``nas.search.pipeline.publish``
    recorded); None when that study or attribute is not there."""
    o_study = optuna_study(storage, name)
    return None if o_study is None else o_study.user_attrs.get(key)


@dataclass(frozen=True)
class Repeats:
    """How many of a study's trials evaluated nothing new: a trial whose network (under
    the same budget) the study had evaluated before adds no evaluation, and one that
    takes another study's result records ``reused <study>``. A sampler that proposes
    networks again (NSGA-II late in a long search) shows here."""

    #: Finished trials.
    trials: int
    #: The study's own evaluations: distinct networks under distinct budgets.
    networks: int
    #: Of those, results taken from another study rather than evaluated here.
    reused: int

    @property
    def fresh(self) -> int:
        """Networks this study evaluated itself."""
        return self.networks - self.reused

    @property
    def repeats(self) -> int:
        """Trials that evaluated nothing new (0 while trials still run: an evaluation
        is on record before its trial is finished)."""
        return max(0, self.trials - self.fresh)


def repeats(r: StudyReport) -> Repeats:
    reused = sum(e.reason.startswith("reused ") for e in r.evaluations)
    return Repeats(r.trials, len(r.evaluations), reused)


@dataclass(frozen=True)
class Progress:
    """The search over time: per complete evaluation (oldest first), its accuracy, the best
    accuracy so far, and the hypervolume (accuracy up, latency down) of the front so far."""

    accuracy: tuple[float, ...]
    best: tuple[float, ...]
    hypervolume: tuple[float, ...]
    #: (accuracy, latency ms) the hypervolume is measured from: 0 and 1.1x the slowest.
    reference: tuple[float, float]


def progress(evaluations: Sequence[Evaluation]) -> Progress:
    done = [e for e in evaluations if e.status == "complete"]
    ref = (0.0, 1.1 * max((e.latency_ms for e in done), default=1.0))
    acc = tuple(e.val_accuracy for e in done)
    best = tuple(itertools.accumulate(acc, max))
    front: list[tuple[float, float]] = []  # kept small: the area needs only the front
    hv: list[float] = []
    for e in done:
        p = (e.val_accuracy, e.latency_ms)
        if hv and any(q == p or dominates(q, p, ACCURACY_LATENCY) for q in front):
            hv.append(hv[-1])
            continue
        front = [q for q in front if not dominates(p, q, ACCURACY_LATENCY)] + [p]
        hv.append(hypervolume_2d(front, ref, ACCURACY_LATENCY))
    return Progress(acc, best, tuple(hv), ref)


def op_shares(evaluations: Sequence[Evaluation]) -> dict[str, float]:
    """Share of all blocks (stems and heads aside) that use each op, over ``evaluations``;
    a cell's block counts its edges' ops (NAS-Bench-201: which of its 5 ops won)."""
    from nas.model import nb201_cell

    counts: Counter[str] = Counter()
    for e in evaluations:
        for _, _, b in e.arch.blocks():
            counts.update(nb201_cell.parse(b.cell) if b.cell else (b.op,))
    total = sum(counts.values())
    return {op: n / total for op, n in sorted(counts.items())} if total else {}
