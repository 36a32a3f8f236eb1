"""The one place where Optuna meets Ray Tune: `nas search`.

Each Ray trial trains one architecture. The Optuna study lives in the study's RDB
storage (so optuna-dashboard shows every trial while it runs); OptunaSearch drives it in
define-by-run mode, where the architecture is sampled (``nas.space.searchspace.sample``) and its
latency predicted in the driver, in microseconds, before Ray schedules anything.
What a trial really achieved (complete, stopped early, diverged, rejected) is written to
the evaluations table (nas.search.results), which is what dedup and the final front read.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from nas.bench.tabular import TableLatency
from nas.core.atomic import write_text
from nas.core.db import optuna_storage
from nas.core.errors import NasError
from nas.core.interrupt import StopRequest, stop_on_interrupt
from nas.latency.predictor import Predictor
from nas.latency.runtimes import check_available
from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.search.cluster import check_shared_storage, local_weights, trial_dir
from nas.search.config import HyperParameter, StudyConfig
from nas.search.results import Evaluation, EvaluationStore
from nas.search.selection import budget_of, train_config, trial_objective, winners
from nas.search.setup import SearchSetup, prepare, ray_address
from nas.space.searchspace import SearchSpace, decode, dimensions, sample
from nas.train.data import Dataset
from nas.train.loop import evaluate

__all__ = [
    "Candidate",
    "FrontMember",
    "SearchResult",
    "finish",
    "member_row",
    "publish",
    "run_inprocess",
    "run_trials",
    "search",
]


def _run_trial(
    config: dict[str, Any],
    *,
    study: StudyConfig,
    data: Dataset | None,
    artifacts: str,
    report: Callable[[dict[str, Any]], None],
) -> Evaluation:
    """One trial, whatever runs it: reuse an earlier result, reject over budget, look up
    (tabular) or train; record in the evaluations table. ``report`` gets the metrics
    after each epoch but the last (they feed ASHA)."""
    arch = Architecture.from_json(config["arch_json"])
    cfg = train_config(study, config.get("hp", {}))
    budget = budget_of(study, config.get("hp", {}), arch.resolution)
    store = EvaluationStore(study.search.storage)
    latency, params, macs = config["latency_ms"], config["params"], config["macs"]
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    base = dict(
        node=node,
        study=study.name,
        arch_id=arch.id,
        budget=budget,
        latency_ms=latency,
        params=params,
        macs=macs,
        arch_json=arch.to_json(),
    )
    obj = study.objective
    prior = store.lookup(arch.id, budget)
    if prior is not None:  # evaluated before under the same budget: reuse, do not train again
        # The accuracy carries over; the latency is this study's (its target or device).
        ev = dataclasses.replace(
            prior, study=study.name, reason=f"reused {prior.study}", latency_ms=latency
        )
    elif obj.mode == "budget" and latency > obj.latency_budget_ms:  # rejected before training
        ev = Evaluation(
            status="rejected",
            val_accuracy=0.0,
            epochs=0,
            seconds=0.0,
            reason=f"predicted {latency:.3f} ms > budget",
            **base,
        )
    elif study.tabular.benchmark:  # looked up on the head (_describe): no table here
        found = config["tabular"]
        ev = Evaluation(
            status="complete",
            val_accuracy=found["val_accuracy"],
            epochs=200,
            seconds=0.0,
            reason=f"{study.tabular.benchmark} row {found['row']}",
            **base,
        )
    else:
        assert data is not None
        single = obj.mode != "pareto"

        started = time.perf_counter()

        def each_epoch(ep) -> None:
            if single and ep.epoch < cfg.epochs:
                # On record first: the scheduler may end this trial at the report below,
                # and then no code of ours runs again (settle_running says "stopped").
                store.record(
                    Evaluation(
                        status="running",
                        val_accuracy=ep.val_accuracy if math.isfinite(ep.val_accuracy) else 0.0,
                        epochs=ep.epoch,
                        seconds=time.perf_counter() - started,
                        reason=f"epoch {ep.epoch} of {cfg.epochs}",
                        **base,
                    )
                )
                metrics = trial_objective(study, ep.val_accuracy, latency, params, macs)
                report({**metrics, "status": "running", "epoch": ep.epoch})

        weights = trial_dir(artifacts) / f"{arch.id[:16]}-{budget[:12]}.pt"
        result = evaluate(arch, data, cfg, report=each_epoch, weights_path=weights)
        ev = Evaluation(
            status=result.status,
            val_accuracy=result.val_accuracy if not math.isnan(result.val_accuracy) else 0.0,
            epochs=result.epochs,
            seconds=result.seconds,
            weights=result.weights,
            reason=result.reason,
            **base,
        )
    store.record(ev)
    return ev


def _final_metrics(study: StudyConfig, ev: Evaluation) -> dict[str, Any]:
    """What a finished trial reports (a result that is not complete scores accuracy 0)."""
    acc = ev.val_accuracy if ev.status == "complete" else 0.0
    metrics = trial_objective(study, acc, ev.latency_ms, ev.params, ev.macs)
    return {**metrics, "status": ev.status, "epoch": ev.epochs}


def _trainable(
    config: dict[str, Any], *, study: StudyConfig, data: Dataset | None, artifacts: str
) -> None:
    """One Ray trial."""
    from ray import tune

    ev = _run_trial(config, study=study, data=data, artifacts=artifacts, report=tune.report)
    tune.report(_final_metrics(study, ev))


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
        _ON_TRIAL.get(self.key, _nothing)()


_STOP: dict[int, StopRequest] = {}


class _StopWhenAsked(tune.Stopper):
    """Ends the whole run once ``_STOP[key]`` is set (a Ctrl-C): Tune stops the running
    trials and returns from ``fit``; a trial it stopped before Optuna heard of its end is
    then marked by ``_abandon_unfinished``."""

    def __init__(self, key: int) -> None:
        self.key = key

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return bool(_STOP.get(self.key))


def _abandon_unfinished(
    storage: Any,
    name: str,
    first: int,
    *,
    running: bool = True,
    why: str = "unfinished when its run ended (Ctrl-C or time budget)",
) -> None:
    """Mark FAIL the trials from number ``first`` on that a run left unfinished: queued
    candidates it never started (the next run would take them for its own) and, with
    ``running``, trials cut off by a second Ctrl-C (shown as running forever otherwise)."""
    import optuna

    left = (optuna.trial.TrialState.WAITING,) + (
        (optuna.trial.TrialState.RUNNING,) if running else ()
    )
    o_study = optuna.load_study(study_name=name, storage=storage)
    for t in o_study.get_trials(deepcopy=False, states=left):
        if t.number >= first:
            storage.set_trial_user_attr(t._trial_id, "abandoned", why)
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def _describe(
    trial: Any, arch: Architecture, hp: dict[str, Any], predictor: Predictor | TableLatency
) -> dict[str, Any]:
    """Predict, count, note on the Optuna trial (the dashboard shows it) and hand the
    trainable its config."""
    c = cost(arch)
    latency = predictor.predict(arch)
    attrs = {
        "arch_id": arch.id,
        "arch": arch.compact(),
        "latency_ms": latency,
        "params": c.params,
        "macs": c.macs,
    }
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    config = {
        "arch_json": arch.to_json(),
        "hp": hp,
        "latency_ms": latency,
        "params": c.params,
        "macs": c.macs,
    }
    if isinstance(predictor, TableLatency):
        # The benchmark's figures travel with the trial (a few numbers), so workers on
        # other machines need no copy of its tables; the trial uses them unless reused.
        found = predictor.bench.lookup(arch.cell)
        config["tabular"] = {"val_accuracy": found.val_accuracy, "row": found.row}
    return config


@dataclass(frozen=True)
class _Define:
    """OptunaSearch's define-by-run space, run in the driver for every new trial: sample
    the architecture and the training settings, predict latency, note them on the trial.
    A plain picklable object (Tune checkpoints its searcher)."""

    space: SearchSpace
    hyperparameters: tuple[HyperParameter, ...]
    predictor: Predictor | TableLatency

    def __call__(self, trial: Any) -> dict[str, Any]:
        arch = sample(self.space, trial)
        if isinstance(self.predictor, TableLatency):  # score the class's representative
            sampled, arch = arch, self.predictor.representative(arch)
            if arch.cell != sampled.cell:
                trial.set_user_attr("sampled_cell", sampled.cell)
        hp: dict[str, Any] = {}
        for h in self.hyperparameters:
            if h.choices:
                hp[h.name] = trial.suggest_categorical(h.name, list(h.choices))
            elif h.integer:
                hp[h.name] = trial.suggest_int(h.name, int(h.low), int(h.high), log=h.log)
            else:
                hp[h.name] = trial.suggest_float(h.name, h.low, h.high, log=h.log)
        return _describe(trial, arch, hp, self.predictor)


@dataclass(frozen=True)
class Candidate:
    """A network to train as it is (a compound-scaling grid point, a family member), with
    what the dashboard should show about it (e.g. ``{"alpha": 1.2, ...}``)."""

    arch: Architecture
    attrs: tuple[tuple[str, float], ...] = ()
    #: Training settings of its own (the searched hyperparameters it was found with).
    hp: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class _Candidates:
    """Define-by-run over a fixed list: each trial takes one candidate by index (the
    indices are queued on the study, so every one is taken exactly once)."""

    candidates: tuple[Candidate, ...]
    predictor: Predictor | TableLatency

    def __call__(self, trial: Any) -> dict[str, Any]:
        # An int, not a categorical: Optuna fixes a categorical's choices for the life of
        # a study, and a sub-study run again (a confirmation after a longer search) has
        # another number of candidates.
        i = trial.suggest_int("candidate_index", 0, len(self.candidates) - 1)
        chosen = self.candidates[i]
        for key, value in chosen.attrs:
            trial.set_user_attr(key, value)
        return _describe(trial, chosen.arch, dict(chosen.hp), self.predictor)


@dataclass(frozen=True)
class _NetworkKey:
    """Which network a params dict stands for (in a tabular study: its representative
    row), so REA never proposes one network twice. Params it cannot decode (a partial
    dict of a conditional space) stand for themselves."""

    space: SearchSpace
    predictor: Predictor | TableLatency

    @functools.cached_property
    def _labels(self) -> frozenset[str]:
        return frozenset(d.label for d in dimensions(self.space))

    def __call__(self, params: Mapping[str, Any]) -> Hashable:
        try:
            arch = decode(self.space, {k: v for k, v in params.items() if k in self._labels})
        except NasError:
            return tuple(sorted(params.items()))
        if isinstance(self.predictor, TableLatency):
            return self.predictor.representative(arch).cell
        return arch.id


def _sampler(study: StudyConfig, key: Callable[[Mapping[str, Any]], Hashable] | None = None):
    from nas.search.samplers import SamplerRequest, get_sampler

    s = study.search
    constraints = None
    if study.objective.mode == "budget":
        budget = study.objective.latency_budget_ms

        def constraints(t):  # <= 0 is feasible
            return [t.user_attrs.get("latency_ms", math.inf) - budget]

    request = SamplerRequest(seed=s.seed, trials=s.trials, key=key, constraints=constraints)
    return get_sampler(s.sampler, field="search.sampler").build(request)


@dataclass(frozen=True)
class _Plan:
    """What both executors need: the Optuna storage, the define-by-run function, the
    sampler, how many trials, and the metrics (with Tune's modes) the study optimises."""

    storage: Any
    define: _Define | _Candidates
    sampler: Any
    trials: int
    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    #: How many trials the Optuna study held before this run: those from here on are its.
    first: int


def _plan(setup: SearchSetup, candidates: Sequence[Candidate]) -> _Plan:
    import optuna

    study = setup.study
    s, obj = study.search, study.objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    storage = optuna_storage(s.storage)
    metrics = tuple(obj.metrics) if obj.mode == "pareto" else ("objective",)
    modes = tuple("max" if d == "maximize" else "min" for d in obj.directions)
    o_study = optuna.create_study(
        study_name=study.name,
        storage=storage,
        directions=list(obj.directions),
        load_if_exists=True,
    )
    if o_study.metric_names != list(metrics):  # optuna-dashboard labels its axes by them
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            o_study.set_metric_names(list(metrics))
    first = len(o_study.get_trials(deepcopy=False))
    # Trials write weights there (nas.search.cluster.trial_dir: when their node sees it).
    setup.artifacts.mkdir(parents=True, exist_ok=True)
    if candidates:  # networks outside the space: fill their units while we can measure
        setup.predictor.predict_many([c.arch for c in candidates])
    predictor = setup.predictor
    if isinstance(predictor, Predictor):
        # The searcher gets a plain copy (picklable: no database handle, no measuring).
        predictor = Predictor(predictor.entries, predictor.calibration, cold=predictor.cold)
    if not candidates:
        define = _Define(setup.space, study.hyperparameters, predictor)
        key = _NetworkKey(setup.space, predictor)
        return _Plan(storage, define, _sampler(study, key), s.trials, metrics, modes, first)
    # Each candidate once: queued on the study, which `ask` serves before sampling; what
    # an older run queued and never started belongs to its own list of candidates.
    _abandon_unfinished(storage, study.name, 0, running=False, why="queued by an older run")
    for i in range(len(candidates)):
        o_study.enqueue_trial({"candidate_index": i})
    sampler = optuna.samplers.RandomSampler(seed=s.seed)
    define_c = _Candidates(tuple(candidates), predictor)
    return _Plan(storage, define_c, sampler, len(candidates), metrics, modes, first)


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


def run_inprocess(
    setup: SearchSetup,
    *,
    on_trial: Callable[[], None] = lambda: None,
    candidates: Sequence[Candidate] = (),
    max_queries: int | None = None,
    stop: StopRequest | None = None,
) -> tuple[float, list[str]]:
    """The study's trials one by one in this process (no Ray, no early stopping): the
    same define-by-run sampling, reuse, lookup or training and recording as on Ray.

    ``max_queries``: stop once this many trials were evaluated afresh (not reused);
    ``search.trials`` still caps the number of trials. Returns as ``run_trials``.
    """
    import optuna

    study, s = setup.study, setup.study.search
    plan = _plan(setup, candidates)
    o_study = optuna.create_study(
        study_name=study.name,
        storage=plan.storage,
        sampler=plan.sampler,
        directions=list(study.objective.directions),
        load_if_exists=True,
    )
    errors: list[str] = []
    queries = 0
    start = time.perf_counter()
    try:
        for _ in range(plan.trials):
            if s.timeout_s and time.perf_counter() - start > s.timeout_s:
                break
            if stop:
                break
            if max_queries is not None and queries >= max_queries:
                break
            trial = o_study.ask()
            try:
                config = plan.define(trial)
                ev = _run_trial(
                    config,
                    study=study,
                    data=setup.data,
                    artifacts=str(setup.artifacts),
                    report=lambda _: None,
                )
            except Exception as err:  # a trial that raises is recorded as failed, not fatal
                o_study.tell(trial, state=optuna.trial.TrialState.FAIL)
                errors.append((str(err).strip().splitlines() or [type(err).__name__])[-1])
            else:
                queries += ev.status != "rejected" and not ev.reason.startswith("reused")
                values = _final_metrics(study, ev)
                o_study.tell(trial, [values[m] for m in plan.metrics])
            on_trial()
    finally:
        _abandon_unfinished(plan.storage, study.name, plan.first)
    return time.perf_counter() - start, errors


def run_trials(
    setup: SearchSetup,
    *,
    on_trial: Callable[[], None] = lambda: None,
    num_cpus: int | None = None,
    candidates: Sequence[Candidate] = (),
    stop: StopRequest | None = None,
) -> tuple[float, list[str]]:
    """Run the study's trials on Ray (or in this process when the study's executor is
    ``inprocess``); returns the wall time in seconds and one line per trial that raised
    (a failed trial does not stop the search).

    ``candidates``: train exactly these networks, one trial each (queued on the Optuna
    study), instead of sampling the study's space; ``search.trials`` is ignored.
    ``stop``: once set (nas.core.interrupt), the running trials are ended and no new one
    starts; what finished is stored.
    """
    study = setup.study
    if study.search.executor == "inprocess":
        return run_inprocess(setup, on_trial=on_trial, candidates=candidates, stop=stop)
    import ray
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    s, obj = study.search, study.objective
    plan = _plan(setup, candidates)
    metrics, modes = list(plan.metrics), list(plan.modes)
    storage, sampler, trials = plan.storage, plan.sampler, plan.trials
    searcher = OptunaSearch(
        space=plan.define,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=sampler,
        study_name=study.name,
        storage=storage,
    )
    if not ray.is_initialized():
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
                f"cannot reach the Ray cluster ({str(err).splitlines()[0]})",
                field="search.ray_address",
                source=address,
            ) from None
    check_shared_storage(s.storage, ray.nodes(), ray.util.get_node_ip_address())
    cpus = ray.cluster_resources().get("CPU", 1.0)
    gpus = ray.cluster_resources().get("GPU", 0.0)
    fit = int(cpus // s.cpus_per_trial)
    if s.gpus_per_trial > 0:
        fit = min(fit, int(gpus // s.gpus_per_trial))
    concurrent = s.max_concurrent or max(1, fit)
    scheduler = None
    if obj.mode != "pareto" and s.early_stopping and study.train.epochs > 2:
        scheduler = ASHAScheduler(
            time_attr="epoch",
            metric="objective",
            mode="max",
            max_t=study.train.epochs,
            grace_period=2,
        )

    # Tune pickles its callbacks with the experiment state: keep the (unpicklable)
    # progress function in this process and give Tune only a key to it.
    key = id(on_trial)
    _ON_TRIAL[key] = on_trial
    _STOP[key] = stop if stop is not None else StopRequest()

    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable, study=study, data=setup.data, artifacts=str(setup.artifacts)
        ),
        {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=trials,
            max_concurrent_trials=concurrent,
            time_budget_s=s.timeout_s or None,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=study.name,
            storage_path=str(Path(tempfile.gettempdir()) / f"nas-ray-{os.getuid()}"),
            verbose=0,
            callbacks=[_Progress(key)],
            stop=_StopWhenAsked(key),
        ),
    )
    # Tune's newer console output prints a configuration box and result paths for every
    # run even at verbose=0; the classic reporter honours verbose=0 (our progress bar and
    # notes say enough). A user who wants Tune's own output sets RAY_AIR_NEW_OUTPUT=1.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ctrl-C is ours (nas.core.interrupt -> _StopWhenAsked): Tune's own handler would end the
    # run without telling Optuna, leaving its trials RUNNING, and print how to resume
    # through Tune's API, which is not how a study continues.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    store = EvaluationStore(s.storage)
    store.settle_running(study.name)  # what a killed run left
    start = time.perf_counter()
    try:
        grid = tuner.fit()
    finally:
        _ON_TRIAL.pop(key, None)
        _STOP.pop(key, None)
        _abandon_unfinished(storage, study.name, plan.first)
        store.settle_running(study.name)
    errors = [(str(e).strip().splitlines() or [type(e).__name__])[-1] for e in grid.errors]
    return time.perf_counter() - start, errors


@dataclass(frozen=True)
class FrontMember:
    """A member of the final front (or the best of a single-objective study)."""

    evaluation: Evaluation
    test_accuracy: float
    #: Whole-model latency measured in isolation after the search (None: target not here).
    measured_ms: float | None
    export_dir: str


@dataclass(frozen=True)
class SearchResult:
    study: str
    storage: str
    space: str
    evaluations: tuple[Evaluation, ...]
    front: tuple[FrontMember, ...]
    seconds: float
    #: One line per trial that raised.
    errors: tuple[str, ...] = ()
    #: Stopped by Ctrl-C: the front is chosen from what finished before it.
    interrupted: bool = False


def finish(
    setup: SearchSetup,
    evaluations: Sequence[Evaluation],
    out_root: Path,
    *,
    note: Callable[[str], None] = lambda _: None,
) -> list[FrontMember]:
    """For each trained evaluation: its test accuracy (computed once, here), its latency
    measured in isolation on the target when this machine is it, and its export.

    A tabular evaluation's test accuracy and measured latency come from the table, and
    its export is the network's source and JSON only (it was never trained here)."""
    from nas.latency.workflow import measure_settled
    from nas.model.builder import load_weights
    from nas.model.export import export
    from nas.train.loop import accuracy

    measurable = setup.target is not None
    if setup.target is not None:
        try:
            check_available(setup.target)
        except NasError:
            measurable = False
    members = []
    for ev in evaluations:
        arch = ev.arch
        name = f"{setup.study.name}_{arch.short_id}".replace("-", "_")
        out = out_root / arch.short_id
        if isinstance(setup.predictor, TableLatency):
            found = setup.predictor.bench.lookup(arch.cell)
            export(arch, out, name=name, formats=("py", "json"), overwrite=True)
            members.append(FrontMember(ev, found.test_accuracy, found.latency_ms, str(out)))
            continue
        assert setup.data is not None and setup.target is not None
        model = load_weights(arch, local_weights(ev, setup.artifacts))
        test_acc = accuracy(model, setup.data, setup.data.test, arch.resolution)
        timed = measure_settled(arch, setup.target) if measurable else None
        if measurable and timed is None:
            note(f"{arch.short_id}: the machine stayed too busy to time it; measured_ms left empty")
        measured = timed[0].ms if timed else None
        export(arch, out, model=model, name=name, overwrite=True)
        members.append(FrontMember(ev, test_acc, measured, str(out)))
    return members


def member_row(m: FrontMember) -> dict[str, Any]:
    """A trained, measured, exported network as plain data (front.json, family.json)."""
    e = m.evaluation
    return {
        "arch_id": e.arch_id,
        "arch": e.arch.compact(),
        "resolution": e.arch.resolution,
        "val_accuracy": e.val_accuracy,
        "test_accuracy": m.test_accuracy,
        "predicted_ms": e.latency_ms,
        "measured_ms": m.measured_ms,
        "params": e.params,
        "macs": e.macs,
        "export": m.export_dir,
    }


def publish(study: StudyConfig, key: str, value: Any, path: Path) -> None:
    """Record ``value`` on the study in its storage (user attribute ``key``: the dashboard
    shows it) and as a JSON file, written atomically."""
    import optuna

    storage = optuna_storage(study.search.storage)
    optuna.load_study(study_name=study.name, storage=storage).set_user_attr(key, value)
    write_text(path, json.dumps(value, indent=2) + "\n")


def search(
    study: StudyConfig,
    *,
    note: Callable[[str], None] = lambda _: None,
    on_trial: Callable[[], None] = lambda: None,
    num_cpus: int | None = None,
) -> SearchResult:
    """Run a study end to end: trials, the confirmation of the best candidates (when the
    study asks for it, nas.search.confirm), then for each front member the test accuracy
    (computed once, here), its latency measured in isolation, and its export."""
    from nas.search.confirm import confirm, final_evaluations  # it imports this module

    start = time.perf_counter()
    setup = prepare(study, note=note)
    stopping = (
        "stopping: the running trials end, then the front of what finished is scored and "
        "exported (Ctrl-C again to abort at once)"
    )
    with stop_on_interrupt(StopRequest(), stopping) as stop:
        _, errors = run_trials(setup, on_trial=on_trial, num_cpus=num_cpus, stop=stop)
        if study.confirm.top and not stop:
            errors += confirm(setup, on_trial=on_trial, num_cpus=num_cpus, note=note, stop=stop)
    if stop:
        note("interrupted (Ctrl-C): the front is chosen from the trainings that finished")
    store = EvaluationStore(study.search.storage)
    out_root = study.export_root
    chosen = winners(study, final_evaluations(study, store, note=note))
    members = finish(setup, chosen, out_root, note=note)
    publish(study, "front", [member_row(m) for m in members], out_root / "front.json")
    return SearchResult(
        study.name,
        study.search.storage,
        setup.space.name,
        tuple(store.of_study(study.name)),
        tuple(members),
        time.perf_counter() - start,
        tuple(errors),
        interrupted=bool(stop),
    )
