"""The Optuna plan of a run of trials: its storage, its sampler and its define-by-run
function, which samples a candidate (or takes the next of a fixed list), predicts its
latency and counts it in the driver, before any executor schedules it.

Every executor runs the same plan: the Optuna study lives in the study's RDB storage
(so optuna-dashboard shows every trial while it runs), and what each trial hands to
nas.search.trial is a small plain config, picklable for a cluster's workers.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.bench.tabular import TableLatency
from nas.core.db import optuna_storage
from nas.core.errors import NasError
from nas.latency.predictor import Predictor
from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.model.nb201_cell import PARAM_NAMES, prune
from nas.search.config import HyperParameter, StudyConfig
from nas.search.prefilter import Prefilter, queued
from nas.search.results import count_trials
from nas.search.setup import SearchSetup
from nas.space.searchspace import Dimension, SearchSpace, decode, dimensions, sample

__all__ = ["Candidate", "Plan", "abandon_unfinished", "make_plan"]


def abandon_unfinished(
    storage: Any,
    name: str,
    first: int,
    *,
    why: str = "queued but never started when its run ended",
) -> None:
    """Mark FAIL the queued trials from number ``first`` on that a run never started
    (candidates: the next run would take them for its own). Trials it left RUNNING are
    nas.search.settle's."""
    import optuna

    o_study = optuna.load_study(study_name=name, storage=storage)
    for t in o_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
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
        config["tabular"] = {
            "val_accuracy": found.val_accuracy,
            "row": found.row,
            "acc_12ep": found.acc_12ep,  # the low fidelity of [tabular] low_fidelity
        }
    return config


@dataclass(frozen=True)
class _Define:
    """OptunaSearch's define-by-run space, run in the driver for every new trial: sample
    the architecture and the training settings, predict latency, note them on the trial.
    A plain picklable object (Tune checkpoints its searcher)."""

    space: SearchSpace
    hyperparameters: tuple[HyperParameter, ...]
    predictor: Predictor | TableLatency
    #: ``[search] prefilter`` (None: off): a trial the sampler proposes trains the best
    #: of several candidates by a zero-cost proxy (nas.search.prefilter).
    prefilter: Prefilter | None = None

    def __call__(self, trial: Any) -> dict[str, Any]:
        if self.prefilter is not None and not queued(trial):
            self.prefilter.fix_best(self.space, trial)  # the sample below records it
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

    @functools.cached_property
    def _cell_dims(self) -> tuple[Dimension, ...]:
        """The cell's edges, in ``nb201_cell.PARAM_NAMES`` order (none without a
        searched cell)."""
        edges = {d.attr: d for d in dimensions(self.space) if d.field.startswith("cell.")}
        return tuple(edges[n] for n in PARAM_NAMES) if len(edges) == len(PARAM_NAMES) else ()

    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with what cannot change the network set to one value (a cell's dead
        edges to ``none`` where ``none`` is a choice), so that params differing only there
        look alike to a surrogate (``bananas``); the other params, and a partial or
        invalid cell, as given."""
        dims = self._cell_dims
        if not dims or any(d.label not in params for d in dims):
            return dict(params)
        try:
            live = prune([params[d.label] for d in dims])
        except NasError:
            return dict(params)
        return {
            **params,
            **{d.label: op for d, op in zip(dims, live, strict=True) if op in d.choices},
        }


def _sampler(study: StudyConfig, key: _NetworkKey):
    """The study's sampler, from the sampler registry (nas.search.samplers)."""
    from nas.search.samplers import SamplerRequest, get_sampler

    s = study.search
    constraints = None
    limit = study.objective.rules.latency_limit(study.objective)
    if limit is not None:  # a hard budget: Optuna's samplers learn feasibility from it

        def constraints(t):  # <= 0 is feasible
            return [t.user_attrs.get("latency_ms", math.inf) - limit]

    request = SamplerRequest(
        seed=s.seed,
        trials=s.trials,
        key=key,
        constraints=constraints,
        canonical=key.canonical,
    )
    return get_sampler(s.sampler, field="search.sampler").build(request)


@dataclass(frozen=True)
class Plan:
    """What every executor needs: the Optuna storage, the define-by-run function, the
    sampler, how many trials, and the metrics the study optimises with their directions."""

    storage: Any
    define: _Define | _Candidates
    sampler: Any
    trials: int
    metrics: tuple[str, ...]
    #: Optuna's direction ("maximize" or "minimize") of each metric.
    directions: tuple[str, ...]
    #: How many trials the Optuna study held before this run: those from here on are its.
    first: int


def _prefilter(setup: SearchSetup) -> Prefilter | None:
    """The study's pre-filter with its one seeded minibatch (None: off)."""
    from nas.proxies import draw_batch, get_proxy

    s = setup.study.search
    p = s.prefilter
    if not p.enabled:
        return None
    batch = None
    if get_proxy(p.proxy).reads == "network":
        assert setup.data is not None  # a tabular study with such a proxy is refused
        batch = draw_batch(setup.data, seed=s.seed, resolution=setup.study.resolution or None)
    return Prefilter(p.proxy, p.keep, p.of, batch, s.seed)


def make_plan(setup: SearchSetup, candidates: Sequence[Candidate] = ()) -> Plan:
    """Open (or create) the study's Optuna study and plan this run: sample the space, or
    with ``candidates`` take exactly those networks, each once (queued on the study)."""
    import optuna

    study = setup.study
    s, obj = study.search, study.objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    storage = optuna_storage(s.storage)
    metrics, directions = obj.rules.metric_names(obj), obj.directions
    o_study = optuna.create_study(
        study_name=study.name,
        storage=storage,
        directions=list(directions),
        load_if_exists=True,
    )
    if o_study.metric_names != list(metrics):  # optuna-dashboard labels its axes by them
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            o_study.set_metric_names(list(metrics))
    first = count_trials(storage, study.name)  # not get_trials: it loads them all
    # Trials write weights there (nas.search.cluster.trial_dir: when their node sees it).
    setup.artifacts.mkdir(parents=True, exist_ok=True)
    if candidates:  # networks outside the space: fill their units while we can measure
        setup.predictor.predict_many([c.arch for c in candidates])
    predictor = setup.predictor
    if isinstance(predictor, Predictor):
        # The searcher gets a plain copy (picklable: no database handle, no measuring).
        predictor = Predictor(predictor.entries, predictor.calibration, cold=predictor.cold)
    if not candidates:
        define = _Define(setup.space, study.hyperparameters, predictor, _prefilter(setup))
        key = _NetworkKey(setup.space, predictor)
        return Plan(storage, define, _sampler(study, key), s.trials, metrics, directions, first)
    # Each candidate once: queued on the study, which `ask` serves before sampling; what
    # an older run queued and never started belongs to its own list of candidates.
    abandon_unfinished(storage, study.name, 0, why="queued by an older run")
    for i in range(len(candidates)):
        o_study.enqueue_trial({"candidate_index": i})
    sampler = optuna.samplers.RandomSampler(seed=s.seed)
    define_c = _Candidates(tuple(candidates), predictor)
    return Plan(storage, define_c, sampler, len(candidates), metrics, directions, first)
