"""One trial, whatever runs it: evaluate one candidate and record the outcome.

A candidate arrives as the plain config the plan made for it (nas.search.plan: the
architecture, its searched hyperparameters, predicted latency, counts, and in a tabular
study the benchmark's figures). The trial reuses an earlier result under the same
budget, rejects a candidate over a hard latency limit, looks a tabular one up or trains
it, and writes what really happened to the evaluations table (nas.search.results):
dedup and the final front read that table, not Optuna's values. No framework here: an
executor calls ``run_trial`` and reports its metrics where its framework wants them.

When the study stops trainings early (nas.search.halving), and in a single-objective
study, the trial reports after each epoch but the last (a tabular one with two fidelities: after the table's 12 epochs) and
puts that epoch on record as ``running`` first; the executor's ``report`` either returns
True to end the training there (in process) or never returns (a Ray Tune scheduler
ends the trial, and ``settle_running`` later turns its row into ``stopped``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

from nas.bench.tabular import FULL_EPOCHS, LOW_EPOCHS
from nas.model.arch import Architecture
from nas.search.cluster import trial_dir
from nas.search.config import StudyConfig
from nas.search.halving import for_study
from nas.search.results import Evaluation, EvaluationStore
from nas.search.selection import budget_of, train_config, trial_objective
from nas.train.data import Dataset
from nas.train.loop import evaluate

__all__ = ["charged_epochs", "final_metrics", "record_failure", "run_trial"]

#: Gets a trial's metrics; a true result asks to end its training at this epoch.
Report = Callable[[dict[str, Any]], object]


def run_trial(
    config: dict[str, Any],
    *,
    study: StudyConfig,
    data: Dataset | None,
    artifacts: str,
    report: Report,
    node: str = "",
    gpu_ids: tuple[str, ...] = (),
) -> Evaluation:
    """Evaluate the candidate ``config`` and record it. ``report`` gets the metrics after
    each epoch but the last when the study stops trainings early; ``node`` is the
    cluster node running it ("" outside a cluster), kept with the evaluation so the
    driver can fetch its weights; ``gpu_ids`` the GPUs its scheduler assigned it."""
    arch = Architecture.from_json(config["arch_json"])
    hp = config.get("hp", {})
    oneshot = study.search.strategy == "oneshot"
    if oneshot:  # scored with weights inherited from the study's supernet (its own budget)
        from nas.search.oneshot import inherited_budget

        assert data is not None
        budget = inherited_budget(study, data)
    else:
        budget = budget_of(study, hp, arch.resolution)
    store = EvaluationStore(study.search.storage)
    latency = config["latency_ms"]
    base = _base(config, study, node, budget=budget)
    prior = store.lookup(arch.id, budget)
    if prior is not None:  # evaluated before under the same budget: reuse, do not train again
        # The accuracy carries over; the latency is this study's (its target or device).
        ev = dataclasses.replace(
            prior, study=study.name, reason=f"reused {prior.study}", latency_ms=latency
        )
    elif study.objective.rules.rejects(study.objective, latency):  # before any training
        reason = f"predicted {latency:.3f} ms > budget"
        ev = Evaluation(
            status="rejected", val_accuracy=0.0, epochs=0, seconds=0.0, reason=reason, **base
        )
    elif study.tabular.benchmark:  # looked up on the head (nas.search.plan): no table here
        ev = _look_up(config["tabular"], study=study, report=report, base=base)
    elif oneshot:
        from nas.search.oneshot import score_inherited

        ev = score_inherited(arch, data, study=study, base=base)
    else:
        assert data is not None
        ev = _train(
            arch, hp, data, study=study, artifacts=artifacts, report=report, base=base,
            gpu_ids=gpu_ids,
        )  # fmt: skip
    store.record(ev)
    return ev


def _base(
    config: dict[str, Any], study: StudyConfig, node: str, *, budget: str | None = None
) -> dict[str, Any]:
    """What every evaluation of the candidate ``config`` records, whatever its outcome;
    ``budget`` defaults to a per-trial training's (a one-shot trial passes its own)."""
    arch = Architecture.from_json(config["arch_json"])
    if budget is None:
        budget = budget_of(study, config.get("hp", {}), arch.resolution)
    return dict(
        node=node,
        study=study.name,
        arch_id=arch.id,
        budget=budget,
        latency_ms=config["latency_ms"],
        params=config["params"],
        macs=config["macs"],
        arch_json=arch.to_json(),
    )


def record_failure(config: dict[str, Any], *, study: StudyConfig, reason: str) -> Evaluation:
    """Record that the trial of ``config`` died without recording anything itself (its
    worker process killed, its node lost): status ``failed`` with ``reason``, replacing
    the ``running`` row of its last epoch, if any."""
    ev = Evaluation(
        status="failed", val_accuracy=0.0, epochs=0, seconds=0.0, reason=reason,
        **_base(config, study, ""),
    )  # fmt: skip
    EvaluationStore(study.search.storage).record(ev)
    return ev


def _running(
    study: StudyConfig,
    base: dict[str, Any],
    accuracy: float,
    epoch: int,
    of: int,
    *,
    seconds: float,
    note: str = "",
) -> tuple[Evaluation, dict[str, Any]]:
    """A training's row after ``epoch`` of ``of`` epochs, and the report that goes with it
    (its reason says where it stopped if it ends here: settle_running prefixes "stopped
    after "; ``note`` adds to it)."""
    ev = Evaluation(
        status="running", val_accuracy=accuracy, epochs=epoch, seconds=seconds,
        reason=f"epoch {epoch} of {of}{note}", **base,
    )  # fmt: skip
    metrics = trial_objective(study, accuracy, base["latency_ms"], base["params"], base["macs"])
    return ev, {**metrics, "status": "running", "epoch": epoch, "epochs_charged": epoch}


def _look_up(
    found: dict[str, Any], *, study: StudyConfig, report: Report, base: dict[str, Any]
) -> Evaluation:
    """A tabular trial: the table's figures, charged 200 epochs; with two fidelities it is
    first charged 12 and ranked on the 12-epoch (test) accuracy, and may stop there."""
    row = f"{study.tabular.benchmark} row {found['row']}"
    if for_study(study) is not None:
        note = f": {row}, its 12-epoch test accuracy"
        ev, metrics = _running(
            study, base, found["acc_12ep"], LOW_EPOCHS, FULL_EPOCHS, seconds=0.0, note=note
        )
        EvaluationStore(study.search.storage).record(ev)  # before a scheduler may end it
        if report(metrics):
            return dataclasses.replace(ev, status="stopped", reason=f"stopped after {ev.reason}")
    return Evaluation(
        status="complete", val_accuracy=found["val_accuracy"], epochs=FULL_EPOCHS, seconds=0.0,
        reason=row, **base,
    )  # fmt: skip


def _train(
    arch: Architecture,
    hp: dict[str, Any],
    data: Dataset,
    *,
    study: StudyConfig,
    artifacts: str,
    report: Report,
    base: dict[str, Any],
    gpu_ids: tuple[str, ...],
) -> Evaluation:
    """Train the candidate. When the study stops trainings early, and in every
    single-objective study (its epochs on record show the training under way), each
    epoch but the last is put on record as ``running`` and reported; a true answer ends
    the training there."""
    cfg = train_config(study, hp)
    stoppable = for_study(study) is not None or not study.objective.rules.multi_objective
    store = EvaluationStore(study.search.storage)
    started, started_at = time.perf_counter(), time.time()

    def each_epoch(ep) -> bool:
        if not stoppable or ep.epoch >= cfg.epochs:
            return False
        accuracy = ep.val_accuracy if math.isfinite(ep.val_accuracy) else 0.0
        seconds = time.perf_counter() - started
        ev, metrics = _running(study, base, accuracy, ep.epoch, cfg.epochs, seconds=seconds)
        # On record first: a Ray scheduler may end this trial at the report below, and
        # then no code of ours runs again (settle_running says "stopped").
        store.record(ev)
        return bool(report(metrics))

    weights = trial_dir(artifacts) / f"{arch.id[:16]}-{base['budget'][:12]}.pt"
    s = study.search
    result = evaluate(
        arch, data, cfg, report=each_epoch, weights_path=weights, gpu_ids=gpu_ids,
        memory_limit=int(s.memory_per_trial_gb * 2**30),
        gpu_share=s.gpus_per_trial if 0 < s.gpus_per_trial < 1 else 1.0,
    )  # fmt: skip
    reason = result.reason
    if result.status == "stopped" and not reason:  # as settle_running words a Ray stop
        reason = f"stopped after epoch {result.epochs} of {cfg.epochs}"
    return Evaluation(
        status=result.status,
        val_accuracy=result.val_accuracy if not math.isnan(result.val_accuracy) else 0.0,
        epochs=result.epochs,
        seconds=result.seconds,
        weights=result.weights,
        reason=reason,
        device=result.device,
        gpu_ids=",".join(result.gpu_ids),
        started_at=started_at,
        ended_at=time.time(),
        **base,
    )


def charged_epochs(ev: Evaluation) -> int:
    """The epochs a trial paid for (trained, or a tabular lookup's fidelity): none when
    it reused an earlier result or was rejected before training."""
    return 0 if ev.reason.startswith("reused ") else ev.epochs


def final_metrics(study: StudyConfig, ev: Evaluation) -> dict[str, Any]:
    """What a finished trial reports (a result that is not complete scores accuracy 0)."""
    acc = ev.val_accuracy if ev.status == "complete" else 0.0
    metrics = trial_objective(study, acc, ev.latency_ms, ev.params, ev.macs)
    return {
        **metrics,
        "status": ev.status,
        "epoch": ev.epochs,
        "epochs_charged": charged_epochs(ev),
    }
