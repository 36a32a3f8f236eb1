"""Trials one by one in this process: no Ray, no early stopping.

The same plan, trial and record as on a cluster; for a tabular study, where a trial is
a lookup, far faster than scheduling it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.core.errors import one_line
from nas.search.executors.base import Executor
from nas.search.trial import final_metrics, run_trial

if TYPE_CHECKING:
    from nas.core.interrupt import StopRequest
    from nas.search.plan import Plan
    from nas.search.setup import SearchSetup

__all__ = ["InProcess"]


def _nothing(_: object) -> None:
    pass


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
                    report=_nothing,
                )  # fmt: skip
            except Exception as err:  # a trial that raises is recorded as failed, not fatal
                o_study.tell(trial, state=optuna.trial.TrialState.FAIL)
                errors.append(one_line(err, line="last"))
            else:
                queries += ev.status != "rejected" and not ev.reason.startswith("reused")
                values = final_metrics(study, ev)
                o_study.tell(trial, [values[m] for m in plan.metrics])
            on_trial()
        return time.perf_counter() - start, errors
