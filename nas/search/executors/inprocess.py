"""Trials one by one in this process: no Ray.

The same plan, trial and record as on a cluster; for a tabular study, where a trial is
a lookup, far faster than scheduling it. Early stopping asks the study's halving
(nas.search.halving) after each epoch, as the Ray Tune scheduler does: a training it
stops ends at that epoch, and its Optuna trial is PRUNED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.core.errors import one_line
from nas.search.executors.base import Executor
from nas.search.halving import StudyHalving, for_study
from nas.search.trial import Report, charged_epochs, final_metrics, run_trial

if TYPE_CHECKING:
    from nas.core.interrupt import StopRequest
    from nas.search.plan import Plan
    from nas.search.setup import SearchSetup

__all__ = ["InProcess"]


def _asks(halving: StudyHalving | None, trial: object) -> Report:
    """The trial's ``report``: true (end the training here) when the halving stops it."""
    if halving is None:
        return lambda _: False
    return lambda metrics: not halving.goes_on(trial, metrics)


@dataclass(frozen=True)
class InProcess(Executor):
    """``max_queries``: stop once this many trials were evaluated afresh (not reused, not
    rejected); the plan's number of trials still caps the run."""

    name = "inprocess"
    max_queries: int | None = None

    def run(
        self,
        setup: SearchSetup,
        plan: Plan,
        *,
        on_trial: Callable[[], None],
        stop: StopRequest,
        num_cpus: int | None,
    ) -> tuple[float, list[str]]:
        import optuna

        study = setup.study
        o_study = optuna.create_study(
            study_name=study.name,
            storage=plan.storage,
            sampler=plan.sampler,
            directions=list(plan.directions),
            load_if_exists=True,
        )
        timeout_s = study.search.timeout_s
        halving = for_study(study)
        errors: list[str] = []
        queries = 0
        start = time.perf_counter()
        for _ in range(plan.trials):
            if timeout_s and time.perf_counter() - start > timeout_s:
                break
            if stop or (self.max_queries is not None and queries >= self.max_queries):
                break
            trial = o_study.ask()
            try:
                config = plan.define(trial)
                ev = run_trial(
                    config, study=study, data=setup.data, artifacts=str(setup.artifacts),
                    report=_asks(halving, trial.number),
                )  # fmt: skip
            except Exception as err:  # a trial that raises is recorded as failed, not fatal
                o_study.tell(trial, state=optuna.trial.TrialState.FAIL)
                errors.append(one_line(err, line="last"))
            else:
                queries += ev.status != "rejected" and not ev.reason.startswith("reused")
                trial.set_user_attr("epochs", charged_epochs(ev))
                if ev.status == "stopped":  # by the halving: no final values to tell
                    trial.set_user_attr("stopped", f"after epoch {ev.epochs}")
                    o_study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    values = final_metrics(study, ev)
                    o_study.tell(trial, [values[m] for m in plan.metrics])
            on_trial()
        return time.perf_counter() - start, errors
