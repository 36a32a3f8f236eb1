"""Run a study's trials: plan them, hand them to the study's executor, and leave the
Optuna study with nothing queued or running when the run ends, however it ends.

A run holds its study's lease (nas.search.lease): one driver per study at a time. So
what a run finds RUNNING when it starts was left by a driver that died, and is settled
(nas.search.settle) before any new trial starts.

Used by the search pipeline, the confirmation and ``nas scale``: each is a batch of
trials, sampled from the space or given as fixed candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nas.core.interrupt import StopRequest
from nas.search.executors import Executor, executor_class
from nas.search.executors.inprocess import InProcess
from nas.search.lease import hold_study
from nas.search.plan import Candidate, abandon_unfinished, make_plan
from nas.search.results import EvaluationStore
from nas.search.settle import settle_trials
from nas.search.setup import SearchSetup

__all__ = ["run_inprocess", "run_trials"]


def _nothing() -> None:
    pass


def run_trials(
    setup: SearchSetup,
    *,
    on_trial: Callable[[], None] = _nothing,
    num_cpus: int | None = None,
    candidates: Sequence[Candidate] = (),
    stop: StopRequest | None = None,
    executor: Executor | None = None,
) -> tuple[float, list[str]]:
    """Run the study's trials with its executor (``search.executor``, unless ``executor``
    is given); returns the wall time in seconds and one line per trial that raised (a
    failed trial does not stop the search).

    ``candidates``: train exactly these networks, one trial each (queued on the Optuna
    study), instead of sampling the study's space; ``search.trials`` is ignored.
    ``stop``: once set (nas.core.interrupt), the running trials are ended and no new one
    starts; what finished is stored. ``num_cpus``: what a local Ray may use.
    """
    chosen = executor if executor is not None else executor_class(setup.study.search.executor)()
    study = setup.study
    with hold_study(study.search.storage, study.name):
        plan = make_plan(setup, candidates)
        store = EvaluationStore(study.search.storage)
        store.settle_running(study.name)  # trainings a dead driver left on record
        settle_trials(study, plan.storage, first=0, why=DIED)
        try:
            return chosen.run(
                setup,
                plan,
                on_trial=on_trial,
                stop=stop if stop is not None else StopRequest(),
                num_cpus=num_cpus,
            )
        finally:
            abandon_unfinished(plan.storage, study.name, plan.first)
            settle_trials(study, plan.storage, first=plan.first, why=UNFINISHED)
            store.settle_running(study.name)


#: Why a trial is FAIL: its run ended first (Ctrl-C, time budget), or its driver died.
UNFINISHED = "unfinished when its run ended (Ctrl-C or time budget)"
DIED = "its driver died (killed or crashed) before the trial ended"


def run_inprocess(
    setup: SearchSetup,
    *,
    on_trial: Callable[[], None] = _nothing,
    candidates: Sequence[Candidate] = (),
    max_queries: int | None = None,
    stop: StopRequest | None = None,
) -> tuple[float, list[str]]:
    """``run_trials`` in this process whatever the study's executor (benchmarks, tests);
    ``max_queries``: stop once this many trials were evaluated afresh (not reused)."""
    return run_trials(
        setup,
        on_trial=on_trial,
        candidates=candidates,
        stop=stop,
        executor=InProcess(max_queries=max_queries),
    )
