"""Everything a search needs, loaded and checked before Ray starts: the study's data, its
space bound to that data, the latency predictor (its table built here when missing and
this machine is the target), and an executor that can run it (a Ray address that
answers). A bad study fails here,
in seconds, with one line, before any trial is scheduled."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nas.bench.tabular import TableLatency, check_cell, open_benchmark, tables_folder
from nas.core.db import check_url
from nas.core.errors import NasError
from nas.latency.lut import LatencyTable
from nas.latency.predictor import Predictor
from nas.latency.runtimes import check_available
from nas.latency.target import Target
from nas.latency.workflow import build_table, calibrate, load_predictor
from nas.search.config import StudyConfig
from nas.search.executors.registry import executor_class
from nas.search.results import EvaluationStore
from nas.space.searchspace import SearchSpace, load_space
from nas.train.data import Dataset, load_dataset

__all__ = ["SearchSetup", "prepare", "study_data", "supernet_root", "training_data"]


@dataclass(frozen=True)
class SearchSetup:
    """Everything a search needs, loaded and checked before Ray starts.

    A tabular study (``study.tabular.benchmark``) has no data and no latency target:
    its results and latencies come from the table (``predictor`` is a TableLatency).
    """

    study: StudyConfig
    data: Dataset | None
    space: SearchSpace
    target: Target | None
    predictor: Predictor | TableLatency
    artifacts: Path


def _bind_space(
    study: StudyConfig, *, in_channels: int, num_classes: int, resolution: int
) -> SearchSpace:
    spec = study.space
    if not spec:
        raise NasError(
            'a study that searches names its search space (space = "tiny": a bundled name '
            "or a .toml path; or --space)",
            field="space",
            source=study.source,
        )
    path = study.resolve(spec) if spec.endswith(".toml") else spec
    resolution = study.resolution or resolution
    space = load_space(path)
    declared = dict(space.top)["resolution"]
    if not min(declared) <= resolution <= max(declared):
        raise NasError(
            f"space {space.name} is designed for {min(declared)}..{max(declared)} px inputs, "
            f"this study's are {resolution} px: set the study's `resolution` in that range "
            "(inputs are resized) or choose another space",
            field="space",
            source=study.source,
        )
    space = space.with_data(in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    # The bound space gets its own name: calibrations are per (space, input) binding.
    return dataclasses.replace(space, name=f"{space.name}@{resolution}px{in_channels}ch")


def _prepare_tabular(study: StudyConfig) -> SearchSetup:
    """A tabular study: the table stands in for data, training and latency target. The
    space is bound to the benchmark's input (CIFAR-10: 32 px RGB, 10 classes)."""
    t = study.tabular
    try:
        folder = tables_folder(t.benchmark, study.resolve(t.path))
        latency = TableLatency(t.benchmark, folder, t.device)
        open_benchmark(latency.benchmark, latency.path, latency.device)
    except NasError as err:
        raise err.at(source=err.source or study.source) from None
    space = _bind_space(study, in_channels=3, num_classes=10, resolution=32)
    from nas.space.searchspace import sample_random

    try:
        check_cell(sample_random(space, 0).cell)
    except NasError as err:
        raise NasError(
            f"{err.reason}; space {space.name} has none", field="space", source=study.source
        ) from None
    artifacts = study.export_root / ".trials"
    return SearchSetup(study, None, space, None, latency, artifacts)


def bound_space(study: StudyConfig, data: Dataset) -> SearchSpace:
    """The study's space bound to ``data``, as ``prepare`` binds it: for a worker that
    has the study and its data but not the setup."""
    return _bind_space(
        study,
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        resolution=data.resolution,
    )


def _same(setup: SearchSetup) -> SearchSetup:
    return setup


def prepare(
    study: StudyConfig,
    *,
    note: Callable[[str], None] = lambda _: None,
    then: Callable[[SearchSetup], SearchSetup] = _same,
) -> SearchSetup:
    """Check the storage, load data, bind the space, make sure the latency table covers
    it (building the missing units here when the target is this machine), load the
    predictor, refuse a latency budget no architecture of the space can meet, and pass
    the setup through ``then`` (a one-shot search readies its supernet there).

    The study's storage is created last: input refused on the way (a space, a data path,
    a cluster that does not answer, a supernet of another space) leaves no database
    behind."""
    check_url(study.search.storage, field="storage")  # a bad URL fails before any work
    executor_class(study.search.executor).check(study)  # e.g. a cluster that does not answer
    setup = _prepare_tabular(study) if study.tabular.benchmark else _prepare_training(study, note)
    _check_budget(study, setup.space, setup.predictor)
    setup = then(setup)
    EvaluationStore(study.search.storage)
    return setup


def supernet_root(study: StudyConfig) -> Path:
    """Where a study's trained supernets are stored (one file per space, data, recipe)."""
    return study.export_root / "supernets"


def study_data(study: StudyConfig) -> Dataset:
    """The study's data set, split as its ``[data]`` section says."""
    d = study.data
    return load_dataset(
        d.name,
        path=study.resolve(d.path) or None,
        seed=d.seed,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        limit=d.limit or None,
    )


def training_data(study: StudyConfig) -> tuple[Dataset, SearchSpace]:
    """A study's data and its space bound to them (what its networks train on)."""
    data = study_data(study)
    return data, bound_space(study, data)


def _prepare_training(study: StudyConfig, note: Callable[[str], None]) -> SearchSetup:
    """A study that trains: its data, its space bound to them, its latency predictor."""
    data, space = training_data(study)
    lat = study.latency
    target = Target(lat.target, threads=lat.threads, batch=lat.batch)
    table = LatencyTable(lat.db)
    try:
        predictor = load_predictor(
            table, target, space=space.name, measure_missing=lat.measure_missing
        )
    except NasError as missing:
        try:
            check_available(target)
        except NasError as err:
            raise NasError(
                f"{err.reason}, and the latency table has nothing to predict {space.name} "
                f"from ({missing.reason}): build it on such a machine, then `nas latency import`",
                field="latency.target",
                source=study.source,
            ) from None
        note(f"building the latency table for {space.name} on {lat.target} (once; resumable)")
        for attempt in range(3):  # resumable: units the machine was too busy for are retried
            if not build_table(space, target, table).noisy:
                break
            time.sleep(2.0 * (attempt + 1))  # give a passing burst of load time to end
        else:
            raise NasError(
                "the machine stayed too busy to measure the latency table; run again",
                field="latency",
            )
        calibrate(space, target, table, n=40, seed=study.search.seed)
        predictor = load_predictor(
            table, target, space=space.name, measure_missing=lat.measure_missing
        )
    miss = predictor.calibration.fit_mape
    if miss > 0.10:
        note(
            f"the latency calibration misses its own models by {100 * miss:.0f}% "
            "on average (a busy machine while timing): latency figures are rough; run "
            "`nas latency calibrate` when the machine is quieter"
        )
    artifacts = study.export_root / ".trials"
    return SearchSetup(study, data, space, target, predictor, artifacts)


def _check_budget(
    study: StudyConfig, space: SearchSpace, predictor: Predictor | TableLatency
) -> None:
    """Refuse, before any training, a latency budget no architecture can meet."""
    obj = study.objective
    limit = obj.rules.latency_limit(obj)
    if limit is None:
        return
    fastest = predictor.fastest(space)
    if fastest > limit:
        where = study.tabular.device if study.tabular.benchmark else study.latency.target
        raise NasError(
            f"no architecture of space {space.name} fits {limit:g} ms on "
            f"{where}: the fastest is predicted at {fastest:.3f} ms or more",
            field="objective.latency_budget_ms",
            source=study.source,
        )
