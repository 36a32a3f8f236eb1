"""Confirm the best candidates before the front is fixed: train them again with other
seeds and choose among them by their mean validation accuracy.

A search scores each network by one training on one validation split. On a small split
(digits: 270 images, one image is 0.37%) that score is noisy, and the networks a search
keeps are partly the ones whose one training was lucky: the winner's curse. Retrained
with 3 fresh seeds each, the digits front members scored below the hand-designed
baselines they had beaten (benchmarks/README.md). So with ``[confirm] top = K``, the K
best candidates (pareto mode: by non-dominated rank, then accuracy) are trained
``seeds`` more times, each seed as a sub-study ``<study>-confirm<j>`` (Ray trials,
shown in the dashboard like any other), with the recipe each was found with; the front
is then chosen among them by the mean of their trainings. A confirmed network keeps the
weights of its best-validation training: the network a user deploys.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from nas.core.interrupt import StopRequest
from nas.search.config import StudyConfig
from nas.search.plan import Candidate
from nas.search.results import Evaluation, EvaluationStore
from nas.search.runner import run_trials
from nas.search.setup import SearchSetup

__all__ = ["confirm", "final_evaluations", "pooled"]


def _sub(study: StudyConfig, j: int) -> StudyConfig:
    from nas.search.selection import sub_study

    train = dataclasses.replace(study.train, seed=study.train.seed + j)
    return sub_study(study, f"confirm{j}", train=train)


def _recipes(study: StudyConfig, evaluations: Sequence[Evaluation]) -> dict[str, dict[str, Any]]:
    """The searched hyperparameters each evaluation was trained with, by arch id: those
    of an Optuna trial of its network whose recipe gives the evaluation's budget."""
    if not study.hyperparameters:
        return {}
    import optuna

    from nas.core.db import optuna_storage
    from nas.search.selection import budget_of

    by_arch = {e.arch_id: e for e in evaluations}
    names = [h.name for h in study.hyperparameters]
    o_study = optuna.load_study(study_name=study.name, storage=optuna_storage(study.search.storage))
    found: dict[str, dict[str, Any]] = {}
    for t in o_study.get_trials(deepcopy=False):
        e = by_arch.get(t.user_attrs.get("arch_id", ""))
        if e is None or e.arch_id in found or not all(n in t.params for n in names):
            continue
        hp = {n: t.params[n] for n in names}
        if budget_of(study, hp, e.arch.resolution) == e.budget:
            found[e.arch_id] = hp
    return found


def _best_per_network(study: StudyConfig, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """``ranked`` evaluations, each network once (its best-ranked evaluation: with
    searched hyperparameters one network can have several recipes)."""
    from nas.search.selection import ranked

    seen: dict[str, Evaluation] = {}
    for e in ranked(study, evaluations):
        seen.setdefault(e.arch_id, e)
    return list(seen.values())


def confirm(
    setup: SearchSetup,
    *,
    on_trial: Callable[[], None] = lambda: None,
    num_cpus: int | None = None,
    note: Callable[[str], None] = lambda _: None,
    stop: StopRequest | None = None,
) -> list[str]:
    """Train the study's ``confirm.top`` best candidates ``confirm.seeds`` more times;
    returns one line per trial that raised. Once ``stop`` is set, nothing more starts."""
    study = setup.study
    c = study.confirm
    store = EvaluationStore(study.search.storage)
    best = _best_per_network(study, store.of_study(study.name))[: c.top]
    if not best:
        return []
    recipes = _recipes(study, best)
    candidates = []
    for e in best:
        hp = recipes.get(e.arch_id, {})
        candidates.append(Candidate(e.arch, hp=tuple(sorted(hp.items()))))
    note(
        f"confirming the best {len(best)} candidate(s): {c.seeds} more training(s) each, "
        "the front chosen by their mean validation accuracy"
    )
    errors: list[str] = []
    for j in range(1, c.seeds + 1):
        if stop:
            break
        sub = _sub(study, j)
        _, errs = run_trials(
            dataclasses.replace(setup, study=sub),
            candidates=candidates,
            on_trial=on_trial,
            num_cpus=num_cpus,
            stop=stop,
        )
        errors += errs
    return errors


def pooled(runs: Sequence[tuple[str, float]]) -> tuple[float, int, list[float]]:
    """The rule that scores a confirmed network from its trainings' (status, validation
    accuracy): their mean, a training that did not complete counting 0; the index of the
    best training (the first on ties), whose weights and test accuracy it keeps; the
    scores."""
    scores = [acc if status == "complete" else 0.0 for status, acc in runs]
    return statistics.fmean(scores), scores.index(max(scores)), scores


def _pool(first: Evaluation, again: Sequence[Evaluation]) -> Evaluation:
    """One network's trainings as one evaluation (``pooled``); a training that raised
    ("failed") is not a training of the network and is left out."""
    runs = [first, *(e for e in again if e.status in ("complete", "diverged"))]
    mean, top, scores = pooled([(e.status, e.val_accuracy) for e in runs])
    listed = ", ".join(f"{s:.4f}" for s in scores)
    return dataclasses.replace(
        runs[top],
        study=first.study,
        status="complete",
        val_accuracy=mean,
        reason=f"confirmed: mean of {len(runs)} trainings ({listed}); weights of the best",
    )


def final_evaluations(
    study: StudyConfig, store: EvaluationStore, *, note: Callable[[str], None] = lambda _: None
) -> list[Evaluation]:
    """What the front is chosen from: the study's evaluations, or, when it confirms its
    candidates, those candidates with their trainings pooled (``_pool``). A study whose
    stored search has no confirmation (interrupted before it, or searched before the
    study asked for one) falls back to its single trainings, and says so. A one-shot
    study's: its front members trained after the search (nas.search.oneshot_results)."""
    if study.search.strategy == "oneshot":
        from nas.search.oneshot_results import final

        return final(study, store, note=note)
    own = store.of_study(study.name)
    if not study.confirm.top:
        return own
    again: dict[str, list[Evaluation]] = {}
    for j in range(1, study.confirm.seeds + 1):
        for e in store.of_study(_sub(study, j).name):
            again.setdefault(e.arch_id, []).append(e)
    if not again:
        if own:
            note(
                f"study {study.name} has no confirmation runs in {study.search.storage}: "
                "choosing among its single trainings"
            )
        return own
    return [_pool(e, again[e.arch_id]) for e in _best_per_network(study, own) if e.arch_id in again]
