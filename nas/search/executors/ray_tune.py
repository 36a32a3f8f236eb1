"""Trials as Ray Tune trials, on a private local Ray or any cluster: the only module of
nas that imports Ray.

OptunaSearch drives the plan's Optuna study in define-by-run mode (the candidate is
sampled and its latency predicted in the driver); each Tune trial runs
nas.search.trial on whichever node Tune places it. Unpromising trials stop early through
a Tune scheduler that asks the study's halving (nas.search.halving: asynchronous
successive halving, by non-dominated sorting in pareto mode); Optuna records them as
PRUNED. Ctrl-C and the time budget end the run through a stopper of ours, so Optuna
hears of every trial's end.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from nas.core.errors import NasError, one_line
from nas.core.interrupt import StopRequest
from nas.search.cluster import check_shared_storage
from nas.search.config import SearchConfig, StudyConfig
from nas.search.executors.base import Executor, Fetch
from nas.search.halving import StudyHalving, for_study
from nas.search.trial import final_metrics, record_failure, run_trial
from nas.train.data import Dataset

if TYPE_CHECKING:
    from nas.search.plan import Plan
    from nas.search.setup import SearchSetup

__all__ = ["RayTune", "fetch_file", "probe_ray", "ray_address"]


def ray_address(configured: str) -> str:
    """Where ``ray.init`` connects: the study's address, else ``RAY_ADDRESS`` (set by
    ``ray job submit``), else a private local instance. Never Ray's own default for no
    address, which joins whichever cluster this machine started last (a ``ray start``
    or another process's ``Cluster``) and dies with it."""
    return configured or os.environ.get("RAY_ADDRESS", "") or "local"


def probe_ray(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, clearly, when a ``host:port`` Ray address does not answer (ray.init
    itself waits minutes)."""
    target = address.removeprefix("ray://")
    if not target or target == "auto" or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as err:
        raise NasError(
            f"cannot reach the Ray cluster at {address} ({err})",
            field="search.ray_address",
        ) from None


def _read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def fetch_file(node_id: str, path: str, timeout_s: float = 300.0) -> bytes:
    """The bytes of ``path`` on Ray node ``node_id``, read by a task pinned to it."""
    pinned = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
    task = ray.remote(num_cpus=0, max_retries=0, scheduling_strategy=pinned)(_read_bytes)
    return ray.get(task.remote(path), timeout=timeout_s)


def _trainable(
    config: dict[str, Any], *, study: StudyConfig, data: Dataset | None, artifacts: str
) -> None:
    """One Tune trial: the trial, then its final metrics. The GPUs Ray assigned
    (``gpus_per_trial``) are the ones ``CUDA_VISIBLE_DEVICES`` shows this process."""
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    gpus = tuple(str(i) for i in ray.get_gpu_ids()) if ray.is_initialized() else ()
    ev = run_trial(
        config, study=study, data=data, artifacts=artifacts, report=tune.report, node=node,
        gpu_ids=gpus,
    )  # fmt: skip
    tune.report(final_metrics(study, ev))


_ON_TRIAL: dict[int, Callable[[], None]] = {}


def _nothing() -> None:
    pass


class _Progress(tune.Callback):
    """Calls ``_ON_TRIAL[key]`` as trials end. Module-level, so Tune pickles it by
    reference and not with the progress bar it drives."""

    def __init__(self, key: int) -> None:
        self.key = key

    def on_trial_complete(self, iteration, trials, trial, **info):  # type: ignore[override]
        _ON_TRIAL.get(self.key, _nothing)()

    def on_trial_error(self, iteration, trials, trial, **info):  # type: ignore[override]
        _fail(self.key, trial)
        _ON_TRIAL.get(self.key, _nothing)()


#: The study of each run (by key), and each failed trial's searcher (by Tune trial id)
#: until ``_fail`` tells Optuna why it failed.
_STUDY: dict[int, StudyConfig] = {}
_FAILING: dict[str, _Searcher] = {}


def _fail(key: int, trial: Any) -> None:
    """A trial failed for good (Tune tried it again once, ``FailureConfig``): record why,
    in the evaluations table (a worker that died recorded nothing) and on its Optuna
    trial, then tell Optuna it failed."""
    lines = [line.strip() for line in (trial.get_error() or "").splitlines() if line.strip()]
    reason = f"failed twice (tried again once): {lines[-1] if lines else 'no error recorded'}"
    study = _STUDY.get(key)
    if study is not None and "arch_json" in trial.config:  # kept if it recorded an end
        record_failure(trial.config, study=study, reason=reason)
    searcher = _FAILING.pop(trial.trial_id, None)
    if searcher is not None:
        searcher.fail(trial.trial_id, reason)


_STOP: dict[int, StopRequest] = {}


class _StopWhenAsked(tune.Stopper):
    """Ends the whole run once ``_STOP[key]`` is set (a Ctrl-C): Tune stops the running
    trials and returns from ``fit``; a trial it stopped before Optuna heard of its end is
    then settled from the evaluations table by ``nas.search.settle``."""

    def __init__(self, key: int) -> None:
        self.key = key

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return bool(_STOP.get(self.key))


class _DefaultAuthNotice(logging.Filter):
    """Drops Ray's notice that a new local cluster has token authentication on (its
    secure default), printed on every search; any other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this")


def _quiet_default_auth_notice() -> None:
    """Our private local Ray keeps Ray's default (token authentication on) without
    saying so on every ``nas search``; what Ray says about a cluster the user points at
    is left alone. (Setting RAY_AUTH_MODE=token instead made the local GCS refuse us.)"""
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _DefaultAuthNotice) for f in log.filters):
        log.addFilter(_DefaultAuthNotice())


def _connect(s: SearchConfig, num_cpus: int | None) -> None:
    """Join the study's cluster, or start a private local Ray, unless Ray already runs."""
    if ray.is_initialized():
        return
    address = ray_address(s.ray_address)
    if address == "local":
        _quiet_default_auth_notice()
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address == "local" else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise NasError(
            f"cannot reach the Ray cluster ({one_line(err)})",
            field="search.ray_address",
            source=address,
        ) from None


def _concurrency(s: SearchConfig) -> int:
    """Trials at once: the study's ``max_concurrent``, else as many as the cluster fits."""
    have = ray.cluster_resources()
    fit = int(have.get("CPU", 1.0) // s.cpus_per_trial)
    if s.gpus_per_trial > 0:
        fit = min(fit, int(have.get("GPU", 0.0) // s.gpus_per_trial))
    if s.memory_per_trial_gb > 0:
        fit = min(fit, int(have.get("memory", 0.0) // _memory_bytes(s)))
    return s.max_concurrent or max(1, fit)


def _memory_bytes(s: SearchConfig) -> int:
    return int(s.memory_per_trial_gb * 2**30)


def _resources(s: SearchConfig) -> dict[str, float]:
    """What Tune reserves for each trial."""
    want: dict[str, float] = {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial}
    if s.memory_per_trial_gb > 0:
        want["memory"] = _memory_bytes(s)
    return want


class _Halving(FIFOScheduler):
    """Tune's side of the study's halving: each ``running`` report (nas.search.trial)
    asks it whether the trial trains on. Asynchronous, as ASHA: a decision uses the
    trials that reached the rung so far, and nobody waits for a rung to fill."""

    def __init__(self, halving: StudyHalving) -> None:
        super().__init__()
        self.halving = halving

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if self.halving.goes_on(trial.trial_id, result):
            return TrialScheduler.CONTINUE
        return TrialScheduler.STOP


def _scheduler(study: StudyConfig) -> _Halving | None:
    """The study's early stopping as a Tune scheduler (None: it has none)."""
    halving = for_study(study)
    return _Halving(halving) if halving is not None else None


class _Searcher(OptunaSearch):
    """OptunaSearch that tells Optuna of a trial whose last result is a ``running``
    report (the scheduler or a Ctrl-C ended it) as PRUNED, not as COMPLETE with that
    epoch's values; each trial's Optuna record that ends without error keeps the epochs it
    paid for. A failed trial is told only once ``_fail`` knows why: Tune tells the searcher first, without
    the error, then the callbacks, with it."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        if error:
            _FAILING[trial_id] = self
            return
        if result:
            ot_trial.set_user_attr("epochs", int(result.get("epochs_charged", 0)))
            if result.get("status") == "running":
                ot_trial.set_user_attr("stopped", f"after epoch {result['epoch']}")
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
                self._completed_trials.add(trial_id)
                return
        super().on_trial_complete(trial_id, result=result, error=error)

    def fail(self, trial_id: str, reason: str) -> None:
        self._ot_trials[trial_id].set_user_attr("failed", reason)
        super().on_trial_complete(trial_id, error=True)


def _searcher(study: StudyConfig, plan: Plan) -> OptunaSearch:
    metrics = list(plan.metrics)
    modes = ["max" if d == "maximize" else "min" for d in plan.directions]
    return _Searcher(
        space=plan.define,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=plan.sampler,
        study_name=study.name,
        storage=plan.storage,
    )


@dataclass(frozen=True)
class RayTune(Executor):
    """Ray Tune trials on the study's cluster (``search.ray_address``)."""

    name = "ray"

    @classmethod
    def check(cls, study: StudyConfig) -> None:
        probe_ray(ray_address(study.search.ray_address))  # RAY_ADDRESS too

    @classmethod
    def fetcher(cls) -> Fetch | None:
        return fetch_file if ray.is_initialized() else None

    def run(
        self,
        setup: SearchSetup,
        plan: Plan,
        *,
        on_trial: Callable[[], None],
        stop: StopRequest,
        num_cpus: int | None,
    ) -> tuple[float, list[str]]:
        study, s = setup.study, setup.study.search
        searcher = _searcher(study, plan)
        _connect(s, num_cpus)
        check_shared_storage(s.storage, ray.nodes(), ray.util.get_node_ip_address())
        # Tune pickles its callbacks with the experiment state: keep the (unpicklable)
        # progress function in this process and give Tune only a key to it.
        key = id(on_trial)
        _ON_TRIAL[key], _STOP[key], _STUDY[key] = on_trial, stop, study
        tuner = self._tuner(setup, plan, searcher, key)
        start = time.perf_counter()
        try:
            grid = tuner.fit()
        finally:
            _ON_TRIAL.pop(key, None)
            _STOP.pop(key, None)
            _STUDY.pop(key, None)
        return time.perf_counter() - start, [one_line(e, line="last") for e in grid.errors]

    def _tuner(
        self, setup: SearchSetup, plan: Plan, searcher: OptunaSearch, key: int
    ) -> tune.Tuner:
        study, s = setup.study, setup.study.search
        trainable = tune.with_resources(
            tune.with_parameters(
                _trainable, study=study, data=setup.data, artifacts=str(setup.artifacts)
            ),
            _resources(s),
        )
        # Tune's newer console output prints a configuration box and result paths for
        # every run even at verbose=0; the classic reporter honours verbose=0 (our
        # progress bar and notes say enough). RAY_AIR_NEW_OUTPUT=1 brings Tune's back.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        # Ctrl-C is ours (nas.core.interrupt -> _StopWhenAsked): Tune's own handler would
        # end the run without telling Optuna, leaving its trials RUNNING, and print how
        # to resume through Tune's API, which is not how a study continues.
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        return tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_scheduler(study),
                num_samples=plan.trials,
                max_concurrent_trials=_concurrency(s),
                time_budget_s=s.timeout_s or None,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=study.name,
                storage_path=str(Path(tempfile.gettempdir()) / f"nas-ray-{os.getuid()}"),
                verbose=0,
                callbacks=[_Progress(key)],
                stop=_StopWhenAsked(key),
                # A worker that dies (killed, out of memory) fails its trial: try it once
                # more; a second failure is recorded with its reason (_fail).
                failure_config=tune.FailureConfig(max_failures=1),
            ),
        )
