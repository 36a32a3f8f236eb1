"""One-shot search (``[search] strategy = "oneshot"``): one supernet trained (or loaded
from its store) before the trials, each trial a subnet scored with inherited weights.

The trials are those of a per-trial search (the same plan, samplers, objective modes,
latency predictor, executors, storage and dashboard); only what a trial does differs:
instead of training its network it re-estimates the subnet's BatchNorm statistics and
scores it on a fixed validation subset (nas.supernet.scoring). Its row in the
evaluations table says ``inherited from supernet <key>`` under a budget keyed by the
supernet (space, data, recipe) and the scoring settings, so it is never reused as, or
mistaken for, a trained result. After the trials the ``[oneshot] top`` best candidates
are trained further, from their inherited weights (or from scratch), as the sub-study
``<study>-finetune`` (nas.search.oneshot_results); the front is chosen among them and
scored, measured and exported by the search pipeline as usual.

A worker (a Ray trial in another process) gets the checkpoint's path with the study and
loads the supernet once per process (``_LOADED``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.core.errors import NasError
from nas.core.interrupt import StopRequest
from nas.model.arch import Architecture
from nas.model.threads import torch_threads
from nas.search.cluster import trial_dir
from nas.search.config import StudyConfig
from nas.search.oneshot_results import INHERITED, finetune_name
from nas.search.results import Evaluation, EvaluationStore, budget_key
from nas.search.selection import budget_of, ranked
from nas.search.setup import SearchSetup, bound_space, supernet_root
from nas.supernet import Supernet
from nas.supernet.scoring import bn_picks, score_subnets
from nas.supernet.store import (
    checkpoint_path,
    data_fingerprint,
    load_supernet,
    space_fingerprint,
)
from nas.train.data import Dataset

__all__ = [
    "check_named",
    "finetune",
    "inherited_budget",
    "inherited_state",
    "ready",
    "score_inherited",
    "with_weights",
]


@dataclass(frozen=True)
class _Loaded:
    supernet: Supernet
    #: What the supernet was trained for: space, data and recipe fingerprints.
    key: str


#: Supernets loaded in this process, by checkpoint path and modification time.
_LOADED: dict[tuple[str, int], _Loaded] = {}


def _key(space_fp: str, data_fp: str, study: StudyConfig) -> str:
    return budget_key(space=space_fp, data=data_fp, recipe=study.supernet.fingerprint())


def _remember(path: Path, loaded: _Loaded) -> _Loaded:
    _LOADED[(str(path), path.stat().st_mtime_ns)] = loaded
    return loaded


def _supernet(study: StudyConfig, data: Dataset) -> _Loaded:
    """The study's supernet, loaded once per process from ``[oneshot] checkpoint`` (set
    by ``ready`` before the trials)."""
    if not study.oneshot.checkpoint:
        raise NasError(
            "a one-shot trial needs the supernet's checkpoint (the search sets it)",
            field="oneshot.checkpoint",
            source=study.source,
        )
    path = Path(study.resolve(study.oneshot.checkpoint))
    try:
        found = _LOADED.get((str(path), path.stat().st_mtime_ns))
    except FileNotFoundError:
        raise NasError("no such checkpoint", field="checkpoint", source=str(path)) from None
    if found is not None:
        return found
    space = bound_space(study, data)
    data_fp = data_fingerprint(data)
    supernet = load_supernet(path, space, data_fp, study.supernet)
    return _remember(path, _Loaded(supernet, _key(space_fingerprint(space), data_fp, study)))


def inherited_budget(study: StudyConfig, data: Dataset) -> str:
    """The budget of a subnet scored on the study's supernet: the supernet's key and the
    scoring settings (a trained network's budget never equals it)."""
    r = study.supernet
    scoring = {"bn_batches": r.bn_batches, "val_subset": r.val_subset, "seed": r.seed}
    return budget_key(strategy="oneshot", supernet=_supernet(study, data).key, scoring=scoring)


def score_inherited(
    arch: Architecture, data: Dataset, *, study: StudyConfig, base: dict
) -> Evaluation:
    """Score ``arch`` with the weights it inherits from the study's supernet (its
    BatchNorm statistics re-estimated first). A NasError naming the field when ``arch``
    is outside the supernet."""
    loaded = _supernet(study, data)
    loaded.supernet.spec.check(arch)
    r = study.supernet
    started = time.perf_counter()
    # The trial's threads as a training's ([train] max_threads): more than the cores a
    # trial has only oversubscribe them.
    with torch_threads(study.train.max_threads):
        (acc,) = score_subnets(
            loaded.supernet, [arch], data,
            bn_batches=r.bn_batches, val_subset=r.val_subset, batch_size=r.batch_size,
            seed=r.seed,
        )  # fmt: skip
    images = min(r.val_subset or math.inf, int(data.val.y.shape[0]))
    reason = (
        f"{INHERITED} from supernet {loaded.key[:12]}: BatchNorm re-estimated on "
        f"{r.bn_batches} batches, scored on {images} validation images"
    )
    return Evaluation(
        status="complete", val_accuracy=float(acc), epochs=0,
        seconds=time.perf_counter() - started, reason=reason, **base,
    )  # fmt: skip


def check_named(setup: SearchSetup, *, note: Callable[[str], None] = lambda _: None) -> SearchSetup:
    """Before anything is written: the checkpoint the study names, loaded and checked
    against its space, data and recipe (a one-line NasError naming the file and what
    differs). A study that names none is left as it is: its supernet is ``ready``'s."""
    study = setup.study
    if not study.oneshot.checkpoint:
        return setup
    assert setup.data is not None
    path = Path(study.resolve(study.oneshot.checkpoint))
    data_fp = data_fingerprint(setup.data)
    supernet = load_supernet(path, setup.space, data_fp, study.supernet).cpu().eval()
    _remember(path, _Loaded(supernet, _key(space_fingerprint(setup.space), data_fp, study)))
    note(f"supernet: {path}")
    return _with_checkpoint(setup, path)


def ready(setup: SearchSetup, *, note: Callable[[str], None] = lambda _: None) -> SearchSetup:
    """Make the study's supernet available before the trials, once the study's lease is
    held (a second driver is refused before it trains anything): the checkpoint
    ``check_named`` checked, or the one stored for the study's space, data and recipe,
    trained here when missing (resumed when a run was cut off). Returns the setup whose
    study carries the checkpoint's path to the trials."""
    from nas.supernet.training import train_supernet

    study = setup.study
    assert setup.data is not None
    if study.oneshot.checkpoint:  # check_named loaded and checked it
        return setup
    recipe = study.supernet
    data_fp = data_fingerprint(setup.data)
    space_fp = space_fingerprint(setup.space)
    path = checkpoint_path(supernet_root(study), space_fp, data_fp, recipe)
    note(f"supernet: {path} (trained once for this space, data and recipe; resumable)")
    with torch_threads(study.train.max_threads):
        supernet = train_supernet(
            setup.space, setup.data, recipe, checkpoint=path, device=study.train.device,
            progress=None,
        )  # fmt: skip
    _remember(path, _Loaded(supernet.cpu().eval(), _key(space_fp, data_fp, study)))
    return _with_checkpoint(setup, path)


def _with_checkpoint(setup: SearchSetup, path: Path) -> SearchSetup:
    oneshot = dataclasses.replace(setup.study.oneshot, checkpoint=str(path))
    return dataclasses.replace(setup, study=dataclasses.replace(setup.study, oneshot=oneshot))


def inherited_state(
    supernet: Supernet, arch: Architecture, data: Dataset, study: StudyConfig
) -> dict[str, torch.Tensor]:
    """The state dict of ``build(arch)`` holding its inherited weights, with BatchNorm
    statistics re-estimated for it as its score was (the supernet's own mix every path)."""
    from nas.supernet import reestimate_bn

    r = study.supernet
    n = int(data.train.y.shape[0])
    picks = bn_picks(n, r.bn_batches, min(r.batch_size, n), r.seed)
    batches = [data.normalise(data.train.x[i], arch.resolution) for i in picks]
    training = supernet.training
    with torch_threads(study.train.max_threads):
        reestimate_bn(supernet, batches, arch=arch)
    supernet.train(training)
    return supernet.state_of(arch)


def _save(state: dict[str, torch.Tensor], path: Path) -> str:
    from nas.core.atomic import write_with

    write_with(path, lambda f: torch.save(state, f))
    return str(path)


def with_weights(setup: SearchSetup, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """``evaluations`` with weights to export: an inherited score (no training after
    the search) gets its inherited weights written beside the trials'."""
    out = []
    for e in evaluations:
        if e.weights:
            out.append(e)
            continue
        assert setup.data is not None
        loaded = _supernet(setup.study, setup.data)
        state = inherited_state(loaded.supernet, e.arch, setup.data, setup.study)
        path = trial_dir(str(setup.artifacts)) / f"{e.arch_id[:16]}-{e.budget[:12]}.pt"
        out.append(dataclasses.replace(e, weights=_save(state, path)))
    return out


def _finetune_budget(study: StudyConfig, cfg_study: StudyConfig, e: Evaluation) -> str:
    """From scratch: a per-trial training's own budget (so either reuses the other);
    from inherited weights: that training from the inherited score's supernet."""
    if study.oneshot.scratch:
        return budget_of(cfg_study, {}, e.arch.resolution)
    return budget_key(finetune=e.budget, train=cfg_study.train)


def finetune(
    setup: SearchSetup,
    *,
    on_trial: Callable[[], None] = lambda: None,
    note: Callable[[str], None] = lambda _: None,
    stop: StopRequest | None = None,
) -> list[str]:
    """Train the ``[oneshot] top`` best candidates further (``[oneshot] epochs`` with the
    ``[train]`` recipe), from their inherited weights or from scratch, one after
    another in this process, recorded as ``<study>-finetune``; returns one line per
    training that did not complete. Once ``stop`` is set, nothing more starts."""
    from nas.train.loop import evaluate

    study = setup.study
    o = study.oneshot
    store = EvaluationStore(study.search.storage)
    best = ranked(study, store.of_study(study.name))[: o.top]
    if not best:
        return []
    assert setup.data is not None
    how = "from scratch" if o.scratch else "from inherited weights"
    note(f"training the best {len(best)} candidate(s) for {o.epochs} epoch(s) {how}")
    cfg_study = dataclasses.replace(study, train=dataclasses.replace(study.train, epochs=o.epochs))
    sub = finetune_name(study)
    errors: list[str] = []
    for e in best:
        if stop:
            break
        arch = e.arch
        budget = _finetune_budget(study, cfg_study, e)
        prior = store.lookup(arch.id, budget)
        if prior is not None:
            store.record(dataclasses.replace(prior, study=sub, reason=f"reused {prior.study}"))
            on_trial()
            continue
        initial = None
        if not o.scratch:
            initial = inherited_state(
                _supernet(study, setup.data).supernet, arch, setup.data, study
            )
        weights = trial_dir(str(setup.artifacts)) / f"{arch.id[:16]}-{budget[:12]}.pt"
        result = evaluate(arch, setup.data, cfg_study.train, weights_path=weights, initial=initial)
        why = f"trained {o.epochs} epoch(s) {how} (inherited score {e.val_accuracy:.4f})"
        if result.reason:
            why += f": {result.reason}"
        ev = dataclasses.replace(
            e,
            study=sub,
            budget=budget,
            status=result.status,
            val_accuracy=0.0 if math.isnan(result.val_accuracy) else result.val_accuracy,
            epochs=result.epochs,
            seconds=result.seconds,
            weights=result.weights,
            reason=why,
            node="",
        )
        store.record(ev)
        if ev.status != "complete":
            errors.append(f"{arch.short_id}: {ev.status} {result.reason}".strip())
        on_trial()
    return errors
