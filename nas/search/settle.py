"""Trials a run left RUNNING in its Optuna study, settled from the evaluations table.

A trial stays RUNNING in Optuna when its run ended before Optuna heard of its end: a
Ctrl-C that stopped it as its training finished, a second Ctrl-C, a driver killed
outright. The evaluations table (nas.search.results) says what really happened, and
Optuna is told the same story: a trial whose evaluation finished is COMPLETE with that
evaluation's values, as if its trainable had reported them; one whose training never
finished is FAIL, with the reason in its user attribute ``abandoned``.
"""

from __future__ import annotations

from typing import Any

from nas.search.config import StudyConfig
from nas.search.results import Evaluation, EvaluationStore
from nas.search.trial import final_metrics

__all__ = ["settle_trials"]

#: Evaluation statuses of a training that ended on its own (not cut off).
FINISHED = ("complete", "diverged", "failed", "rejected")


def _finished(evaluations: list[Evaluation], arch_id: str) -> Evaluation | None:
    """The one finished evaluation of ``arch_id`` (None: none, or several budgets of it,
    where the trial's own cannot be told apart)."""
    found = [e for e in evaluations if e.arch_id == arch_id and e.status in FINISHED]
    return found[0] if len({e.budget for e in found}) == 1 else None


def settle_trials(study: StudyConfig, storage: Any, *, first: int, why: str) -> tuple[int, int]:
    """Settle ``study``'s RUNNING Optuna trials from number ``first`` on (no driver runs
    them any more): COMPLETE with their evaluation's values when it finished, else FAIL
    with ``why``. Returns how many were completed and how many failed."""
    import optuna

    running = optuna.trial.TrialState.RUNNING
    o_study = optuna.load_study(study_name=study.name, storage=storage)
    left = [t for t in o_study.get_trials(deepcopy=False, states=(running,)) if t.number >= first]
    if not left:
        return 0, 0
    evaluations = EvaluationStore(study.search.storage).of_study(study.name)
    metrics = study.objective.rules.metric_names(study.objective)
    completed = failed = 0
    for t in left:
        ev = _finished(evaluations, t.user_attrs.get("arch_id", ""))
        if ev is None:
            storage.set_trial_user_attr(t._trial_id, "abandoned", why)
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            failed += 1
            continue
        values = final_metrics(study, ev)
        note = f"told from the evaluations table ({ev.status}): {why}"
        storage.set_trial_user_attr(t._trial_id, "settled", note)
        storage.set_trial_state_values(
            t._trial_id, optuna.trial.TrialState.COMPLETE, [values[m] for m in metrics]
        )
        completed += 1
    return completed, failed
