"""One trial, whatever runs it: evaluate one candidate and record the outcome.

A candidate arrives as the plain config the plan made for it (nas.search.plan: the
architecture, its searched hyperparameters, predicted latency, counts, and in a tabular
study the benchmark's figures). The trial reuses an earlier result under the same
budget, rejects a candidate over a hard latency limit, looks a tabular one up or trains
it, and writes what really happened to the evaluations table (nas.search.results):
dedup and the final front read that table, not Optuna's values. No framework here: an
executor calls ``run_trial`` and reports its metrics where its framework wants them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

from nas.model.arch import Architecture
from nas.search.cluster import trial_dir
from nas.search.config import StudyConfig
from nas.search.results import Evaluation, EvaluationStore
from nas.search.selection import budget_of, train_config, trial_objective
from nas.train.data import Dataset
from nas.train.loop import evaluate

__all__ = ["final_metrics", "record_failure", "run_trial"]

Report = Callable[[dict[str, Any]], None]


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
    each epoch but the last (an early-stopping scheduler reads them); ``node`` is the
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
        found = config["tabular"]
        reason = f"{study.tabular.benchmark} row {found['row']}"
        ev = Evaluation(
            status="complete", val_accuracy=found["val_accuracy"], epochs=200, seconds=0.0,
            reason=reason, **base,
        )  # fmt: skip
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
    """Train the candidate. In a single-objective study each epoch but the last is put
    on record as ``running`` and reported, so early stopping can end it."""
    cfg = train_config(study, hp)
    single = not study.objective.rules.multi_objective
    store = EvaluationStore(study.search.storage)
    started, started_at = time.perf_counter(), time.time()

    def each_epoch(ep) -> None:
        if not single or ep.epoch >= cfg.epochs:
            return
        # On record first: the scheduler may end this trial at the report below, and
        # then no code of ours runs again (settle_running says "stopped").
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
        metrics = trial_objective(
            study, ep.val_accuracy, base["latency_ms"], base["params"], base["macs"]
        )
        report({**metrics, "status": "running", "epoch": ep.epoch})

    weights = trial_dir(artifacts) / f"{arch.id[:16]}-{base['budget'][:12]}.pt"
    s = study.search
    result = evaluate(
        arch, data, cfg, report=each_epoch, weights_path=weights, gpu_ids=gpu_ids,
        memory_limit=int(s.memory_per_trial_gb * 2**30),
        gpu_share=s.gpus_per_trial if 0 < s.gpus_per_trial < 1 else 1.0,
    )  # fmt: skip
    return Evaluation(
        status=result.status,
        val_accuracy=result.val_accuracy if not math.isnan(result.val_accuracy) else 0.0,
        epochs=result.epochs,
        seconds=result.seconds,
        weights=result.weights,
        reason=result.reason,
        device=result.device,
        gpu_ids=",".join(result.gpu_ids),
        started_at=started_at,
        ended_at=time.time(),
        **base,
    )


def final_metrics(study: StudyConfig, ev: Evaluation) -> dict[str, Any]:
    """What a finished trial reports (a result that is not complete scores accuracy 0)."""
    acc = ev.val_accuracy if ev.status == "complete" else 0.0
    metrics = trial_objective(study, acc, ev.latency_ms, ev.params, ev.macs)
    return {**metrics, "status": ev.status, "epoch": ev.epochs}
