"""`nas search` end to end: trials -> confirmation -> front -> export -> published front.

The trials run on the study's executor (nas.search.runner); with ``[confirm]`` the best
candidates are trained again (nas.search.confirm); the front is chosen from the
evaluations table (nas.search.selection), each member scored on the test split,
measured in isolation on the target, exported, and the front published on the study
(front.json, and a user attribute the dashboard shows). The report page reads what is
published: it is a floor above (nas.report), written by the caller (``nas search``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.bench.tabular import TableLatency
from nas.core.atomic import write_text
from nas.core.db import optuna_storage
from nas.core.errors import NasError
from nas.core.interrupt import StopRequest, stop_on_interrupt
from nas.latency.runtimes import check_available
from nas.search.cluster import local_weights
from nas.search.config import StudyConfig
from nas.search.confirm import confirm, final_evaluations
from nas.search.executors import executor_class
from nas.search.lease import hold_study
from nas.search.results import Evaluation, EvaluationStore
from nas.search.runner import run_trials
from nas.search.selection import winners
from nas.search.setup import SearchSetup, prepare

if TYPE_CHECKING:
    from nas.latency.measure import Measurement

__all__ = ["FrontMember", "SearchResult", "finish", "member_row", "publish", "search"]


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
    measured on the target when this machine is it (all of them together, beside the
    space's anchors: ``measure_paced``), and its export.

    A tabular evaluation's test accuracy and measured latency come from the table, and
    its export is the network's source and JSON only (it was never trained here)."""
    from nas.latency.lut import LatencyTable
    from nas.latency.workflow import measure_paced
    from nas.model.builder import load_weights
    from nas.model.export import export
    from nas.train.loop import accuracy

    measurable = setup.target is not None
    if setup.target is not None:
        try:
            check_available(setup.target)
        except NasError:
            measurable = False
    fetch = executor_class(setup.study.search.executor).fetcher()
    timed: dict[str, Measurement] = {}
    if measurable and not isinstance(setup.predictor, TableLatency):
        assert setup.target is not None
        table = LatencyTable(setup.study.latency.db)
        timed = measure_paced(setup.space, setup.target, table, [ev.arch for ev in evaluations])
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
        model = load_weights(arch, local_weights(ev, setup.artifacts, fetch))
        test_acc = accuracy(model, setup.data, setup.data.test, arch.resolution)
        if measurable and arch.id not in timed:
            note(f"{arch.short_id}: the machine stayed too busy to time it; measured_ms left empty")
        measured = timed[arch.id].ms if arch.id in timed else None
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
    start = time.perf_counter()
    oneshot = study.search.strategy == "oneshot"
    if oneshot:  # a checkpoint the study names is checked before anything is written
        from nas.search import oneshot as one

        setup = prepare(study, note=note, then=lambda s: one.check_named(s, note=note))
    else:
        setup = prepare(study, note=note)
    with hold_study(study.search.storage, study.name) as dead:  # one driver per study
        if dead is not None:
            note(
                f"study {study.name}: its previous driver (pid {dead.pid} on {dead.host}) "
                "died; what it left running is settled from the evaluations table"
            )
        if oneshot:  # the supernet before the trials: they score inherited weights
            setup = one.ready(setup, note=note)
        return _search(setup, note=note, on_trial=on_trial, num_cpus=num_cpus, start=start)


def _search(
    setup: SearchSetup,
    *,
    note: Callable[[str], None],
    on_trial: Callable[[], None],
    num_cpus: int | None,
    start: float,
) -> SearchResult:
    """``search`` once its setup is made and its study's lease held."""
    study = setup.study
    oneshot = study.search.strategy == "oneshot"
    if oneshot:
        from nas.search import oneshot as one
    stopping = (
        "stopping: the running trials end, then the front of what finished is scored and "
        "exported (Ctrl-C again to abort at once)"
    )
    with stop_on_interrupt(StopRequest(), stopping) as stop:
        _, errors = run_trials(setup, on_trial=on_trial, num_cpus=num_cpus, stop=stop)
        if oneshot and not stop:
            errors += one.finetune(setup, on_trial=on_trial, note=note, stop=stop)
        elif study.confirm.top and not stop:
            errors += confirm(setup, on_trial=on_trial, num_cpus=num_cpus, note=note, stop=stop)
    if stop:
        note("interrupted (Ctrl-C): the front is chosen from the trainings that finished")
    store = EvaluationStore(study.search.storage)
    out_root = study.export_root
    chosen = winners(study, final_evaluations(study, store, note=note))
    if oneshot:  # a front of inherited scores (nothing trained after): inherited weights
        chosen = one.with_weights(setup, chosen)
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
