"""Study definitions: one TOML file says what to search, on which data, for what.

``load_study`` reads a file (or a bundled study by name), applies command-line
overrides (``{"search.trials": 10}``) and validates everything up front: every error
names the file and the field, before any data is loaded or any trial runs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.core.bundled import bundled_tomls
from nas.core.db import in_memory
from nas.core.errors import NasError
from nas.core.objectives import METRICS
from nas.core.strict import from_plain
from nas.core.tomlfile import load_toml
from nas.search.executors.registry import EXECUTORS
from nas.search.modes import ObjectiveMode, get_mode
from nas.search.oneshot_config import STRATEGIES, OneShotConfig
from nas.search.samplers import get_sampler
from nas.search.samplers.registry import SAMPLERS
from nas.supernet.recipe import SupernetRecipe
from nas.train.config import TrainConfig

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "ConfirmConfig",
    "DataConfig",
    "HyperParameter",
    "LatencyConfig",
    "ObjectiveConfig",
    "PrefilterConfig",
    "SearchConfig",
    "StudyConfig",
    "TabularConfig",
    "list_studies",
    "load_study",
]

#: Training settings that may be searched jointly with the architecture.
SEARCHABLE = ("lr", "weight_decay", "batch_size", "label_smoothing", "augment")


@dataclass(frozen=True)
class DataConfig:
    #: A dataset by name (nas.train.data; `nas data list`). Study files written before
    #: it was called ``name`` say ``dataset``: still read (nas.search.config._build).
    name: str = "digits"
    #: Directory of the dataset files ("" for digits); relative paths are resolved
    #: against the study file's directory.
    path: str = ""
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    #: Keep only this many samples (0: all), for smoke runs.
    limit: int = 0


@dataclass(frozen=True)
class ObjectiveConfig:
    """What the search optimises: ``mode`` names a registered objective mode
    (nas.search.modes: pareto, budget, reward, accuracy), which reads the other fields."""

    mode: str = "pareto"
    metrics: tuple[str, ...] = ("accuracy", "latency")
    latency_budget_ms: float = 0.0
    reward_exponent: float = -0.07

    def __post_init__(self) -> None:
        rules = get_mode(self.mode)
        for m in self.metrics:
            if m not in METRICS:
                raise NasError(
                    f"unknown metric {m!r} (known: {', '.join(METRICS)})", field="metrics"
                )
        if len(set(self.metrics)) != len(self.metrics):
            raise NasError("a metric is listed twice", field="metrics")
        rules.check(self)
        if self.reward_exponent >= 0:
            raise NasError(
                "must be negative (latency above target lowers the reward)", field="reward_exponent"
            )

    @property
    def rules(self) -> ObjectiveMode:
        """The registered mode that decides directions, scores, rejection and ranking."""
        return get_mode(self.mode)

    @property
    def directions(self) -> tuple[str, ...]:
        return self.rules.directions(self)


@dataclass(frozen=True)
class LatencyConfig:
    target: str = "cpu"
    db: str = "sqlite:///nas_latency.db"
    threads: int = 1
    batch: int = 1
    #: Measure units the table lacks during the search (this machine's table only).
    measure_missing: bool = True

    def __post_init__(self) -> None:
        from nas.latency.target import Target

        Target(self.target, threads=self.threads, batch=self.batch)  # names a bad field


@dataclass(frozen=True)
class TabularConfig:
    """Look each trial's result up in a benchmark table instead of training
    (``benchmark`` empty: train). See nas.bench.tabular."""

    benchmark: str = ""
    #: Directory of the benchmark's tables (relative: against the study file's directory;
    #: empty: ``<data root>/<benchmark>``, see nas.core.paths).
    path: str = ""
    #: The table's device whose measured latency is the latency objective.
    device: str = "pixel3"
    #: With ``search.early_stopping``: two fidelities, 12 and 200 epochs. Each lookup is
    #: charged 12 epochs and ranked at a 12-epoch rung on the table's 12-epoch figure,
    #: which is one seed's CIFAR-10 *test* accuracy (the tables hold no 12-epoch
    #: validation accuracy: selection then sees the test split); the promoted ones are
    #: charged 188 more and scored as usual. For studying schedulers, not for results.
    low_fidelity: bool = False

    def __post_init__(self) -> None:
        from nas.bench.tabular import BENCHMARKS

        if self.benchmark and self.benchmark not in BENCHMARKS:
            raise NasError(
                f"unknown benchmark {self.benchmark!r} (known: {', '.join(BENCHMARKS)})",
                field="benchmark",
            )
        if self.low_fidelity and not self.benchmark:
            raise NasError(
                "only a tabular study (benchmark) has a low fidelity", field="low_fidelity"
            )


@dataclass(frozen=True)
class PrefilterConfig:
    """Score ``of`` candidates per proposal with a zero-cost proxy and train only the best
    ``keep`` (nas.search.plan); ``keep == of`` (the default) trains every proposal."""

    #: The proxy that ranks candidates (nas.proxies). macs: it ranked trained accuracy
    #: best of all proxies on the one space measured (benchmarks/README.md, "Zero-cost
    #: proxies on MNIST"), costs no data and no network, so tabular studies can use it too.
    proxy: str = "macs"
    keep: int = 1
    of: int = 1

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise NasError("must be a positive integer", field="keep")
        if self.keep > self.of:
            raise NasError(f"cannot keep {self.keep} of {self.of} candidates", field="keep")
        if self.enabled:  # proxies need torch: read a study without it when unused
            from nas.proxies import get_proxy

            get_proxy(self.proxy)

    @property
    def enabled(self) -> bool:
        return self.of > self.keep


@dataclass(frozen=True)
class SearchConfig:
    sampler: str = "nsga2"
    trials: int = 40
    #: Wall-clock budget in seconds (0: none); the search stops at trials or time.
    timeout_s: float = 0.0
    seed: int = 0
    storage: str = "sqlite:///nas_studies.db"
    #: Ray cluster address ("auto": the cluster `ray start` runs on this machine; "": the
    #: RAY_ADDRESS environment variable if set, else a private local Ray).
    ray_address: str = ""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    #: Memory each trial is given, in GiB (Ray's ``memory`` resource; 0: not reserved).
    #: A network the cost model says cannot train within it is rejected, not trained.
    memory_per_trial_gb: float = 0.0
    #: Trials at once (0: as many as the cluster's resources allow).
    max_concurrent: int = 0
    #: Successive halving (nas.search.halving): at rungs of ``halving_min_epochs *
    #: halving_eta**k`` epochs, a training goes on only if it is among the best 1/eta of
    #: those that reached the rung, ranked by the study's objectives (pareto mode: by
    #: non-dominated sorting on all its metrics). Off when training is that short.
    early_stopping: bool = True
    #: Keep the best 1/eta at each rung (and rungs eta times apart).
    halving_eta: int = 3
    #: Epochs of the first rung.
    halving_min_epochs: int = 2
    #: How trials run (nas.search.executors): "ray" (Ray Tune trials) or "inprocess"
    #: (one by one in this process, no Ray).
    executor: str = "ray"
    prefilter: PrefilterConfig = field(default_factory=PrefilterConfig)
    #: How a candidate is scored: "pertrial" (trained on its own) or "oneshot" (its
    #: weights inherited from the study's supernet; nas.search.oneshot).
    strategy: str = "pertrial"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise NasError(
                f"unknown strategy {self.strategy!r} (known: {', '.join(STRATEGIES)})",
                field="strategy",
            )
        get_sampler(self.sampler)  # names the field when unknown
        if self.trials < 1:
            raise NasError("must be a positive integer", field="trials")
        if self.timeout_s < 0:
            raise NasError("must be >= 0 (0: no time limit)", field="timeout_s")
        if self.cpus_per_trial <= 0:
            raise NasError("must be positive", field="cpus_per_trial")
        if self.gpus_per_trial < 0:
            raise NasError("must be >= 0", field="gpus_per_trial")
        if self.memory_per_trial_gb < 0:
            raise NasError("must be >= 0 (0: not reserved)", field="memory_per_trial_gb")
        if self.max_concurrent < 0:
            raise NasError("must be >= 0 (0: as many as fit)", field="max_concurrent")
        if self.halving_eta < 2:
            raise NasError(f"must be an integer >= 2, got {self.halving_eta}", field="halving_eta")
        if self.halving_min_epochs < 1:
            raise NasError(
                f"must be a positive integer, got {self.halving_min_epochs}",
                field="halving_min_epochs",
            )
        if self.executor not in EXECUTORS:
            raise NasError(
                f"unknown executor {self.executor!r} (known: {', '.join(EXECUTORS)})",
                field="executor",
            )


@dataclass(frozen=True)
class ConfirmConfig:
    """Before the front is fixed, train the ``top`` best candidates ``seeds`` more times
    with other seeds and choose among them by mean validation accuracy (nas.search.confirm:
    the networks a search keeps by one noisy score are partly the lucky ones)."""

    #: Candidates to confirm (0: off, the front is read from the search's own trainings).
    top: int = 0
    #: Extra trainings per candidate, each with its own training seed.
    seeds: int = 2

    def __post_init__(self) -> None:
        if self.top < 0:
            raise NasError("must be an integer >= 0 (0: off)", field="top")
        if self.seeds < 1:
            raise NasError("must be a positive integer", field="seeds")


@dataclass(frozen=True)
class HyperParameter:
    """A training setting searched jointly with the architecture: either ``choices`` or a
    ``low``..``high`` range (``log`` for a log-uniform one)."""

    name: str
    choices: tuple[float, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def __post_init__(self) -> None:
        if self.name not in SEARCHABLE:
            raise NasError(
                f"cannot search {self.name!r} (searchable: {', '.join(SEARCHABLE)})", field="name"
            )
        if self.choices:
            if self.low or self.high or self.log:
                raise NasError("give either choices or low/high, not both", field="choices")
            if len(set(self.choices)) != len(self.choices):
                raise NasError("a choice is listed twice", field="choices")
        elif not self.low < self.high:
            raise NasError("needs choices, or low < high", field="high")
        elif self.log and self.low <= 0:
            raise NasError("a log range needs low > 0", field="low")

    @property
    def integer(self) -> bool:
        return self.name == "batch_size"


@dataclass(frozen=True)
class StudyConfig:
    name: str
    #: The search space: a bundled name or a .toml path. A study that searches must name
    #: it (nas.search.setup refuses one that does not); reports and dashboards need none.
    space: str = ""
    #: Input resolution the architectures use (0: the dataset's own).
    resolution: int = 0
    export_dir: str = "exports"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    #: A one-shot search's supernet and what it trains after (``search.strategy``).
    oneshot: OneShotConfig = field(default_factory=OneShotConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    tabular: TabularConfig = field(default_factory=TabularConfig)
    #: How the study's supernet trains and scores subnets (``nas supernet train``).
    supernet: SupernetRecipe = field(default_factory=SupernetRecipe)
    hyperparameters: tuple[HyperParameter, ...] = ()
    #: The file it came from (named in errors).
    source: str = ""
    #: Relative paths resolve against this directory: the study file's own for a file
    #: given by path, the working directory for a bundled study, named or given by its
    #: path (its file lives inside the installed package, no place for data or exports).
    base_dir: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise NasError("a study needs a name", field="name")
        if self.resolution < 0:
            raise NasError("must be >= 0 (0: the dataset's own)", field="resolution")
        names = [h.name for h in self.hyperparameters]
        if len(set(names)) != len(names):
            raise NasError("a hyperparameter is listed twice", field="hyperparameters")
        sampler = get_sampler(self.search.sampler, field="search.sampler")
        if self.objective.rules.multi_objective and not sampler.multi_objective:
            fit = ", ".join(n for n, spec in SAMPLERS.items() if spec.multi_objective)
            raise NasError(
                f"{self.search.sampler} is single-objective; for {self.objective.mode} use "
                f"one of: {fit}",
                field="search.sampler",
            )
        if in_memory(self.search.storage) and self.search.executor != "inprocess":
            raise NasError(
                'an in-memory storage lives in one process: it needs executor = "inprocess"',
                field="search.storage",
            )
        if self.tabular.benchmark and self.confirm.top:
            raise NasError(
                "a tabular study looks results up: there is no training to confirm",
                field="confirm.top",
            )
        pre = self.search.prefilter
        if self.tabular.benchmark and pre.enabled:
            from nas.proxies import get_proxy

            if get_proxy(pre.proxy).reads == "network":
                raise NasError(
                    f"{pre.proxy} scores networks on the study's images, and a tabular study "
                    "has none: use params or macs, or no pre-filter",
                    field="search.prefilter.proxy",
                )
        if self.tabular.benchmark and self.hyperparameters:
            raise NasError(
                "a tabular study looks results up: it has no training to search",
                field="hyperparameters",
            )
        if self.search.strategy == "oneshot":
            if self.tabular.benchmark:
                raise NasError(
                    "a tabular study looks results up: it has no supernet to share",
                    field="search.strategy",
                )
            if self.hyperparameters:
                raise NasError(
                    "a one-shot search scores inherited weights: there is no training to search",
                    field="hyperparameters",
                )

    def resolve(self, relative: str) -> str:
        """A path from the study, made absolute against ``base_dir``."""
        if not relative or os.path.isabs(relative) or not self.base_dir:
            return relative
        return str(Path(self.base_dir) / relative)

    @property
    def export_root(self) -> Path:
        """Where the study's outputs go: the front, its report, the family, trial files."""
        return Path(self.resolve(self.export_dir) or "exports")


# -- loading --------------------------------------------------------------------------


def _bundled() -> dict[str, Traversable]:
    return bundled_tomls("studies")


def list_studies() -> list[str]:
    return sorted(_bundled())


def _absolute_sqlite(url: str, base_dir: str) -> str:
    prefix = "sqlite:///"
    if (
        not url.startswith(prefix)
        or url.startswith(prefix + "/")
        or url == prefix + ":memory:"
        or "mode=memory"
        in url  # a named in-memory database (sqlite:///file:x?mode=memory&uri=true)
    ):
        return url
    return prefix + str(Path(base_dir) / url[len(prefix) :])


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise NasError(f"cannot override inside {p!r}", field=dotted)
    node[last] = value


def load_study(
    name_or_path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> StudyConfig:
    """A study file by path, or a bundled study by name, with dotted-key overrides.

    The file is checked as written before the overrides apply, so a bad value in it is
    reported even when an option replaces it; an override's own error names the command
    line as its source, not the file.
    """
    file = load_toml(name_or_path, folder="studies", kind="study", field="study")
    source = file.source
    # A bundled study, by name or by its path (`studies/mnist.toml`): its relative paths
    # mean the working directory's, as with `nas search mnist`.
    base_dir = os.getcwd() if file.bundled else str(Path(source).resolve().parent)
    data = file.data
    if not data:
        raise NasError("empty study file: a study names at least its search space", source=source)
    data.setdefault("name", file.name)
    data["source"] = source
    data.setdefault("base_dir", base_dir)
    _build(data, source)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        for key, value in given.items():
            _set(data, key, value)
    except NasError as err:
        raise err.at(source="command line") from None
    try:
        return _build(data, source)
    except NasError as err:
        if any(err.field == k or err.field.startswith(k + ".") for k in given):
            raise NasError(err.reason, field=err.field, source="command line") from None
        raise


def _build(data: dict[str, Any], source: str) -> StudyConfig:
    data = copy.deepcopy(data)
    section = data.get("data")
    if isinstance(section, dict) and "dataset" in section:
        if "name" in section:
            raise NasError(
                "give the dataset once: `name` (`dataset` is its older spelling)",
                field="data.dataset",
                source=source,
            )
        section["name"] = section.pop("dataset")
    # Ray runs trials in directories of its own: a relative SQLite path must not mean a
    # different file there.
    for section, key, default in (
        ("search", "storage", SearchConfig.storage),
        ("latency", "db", LatencyConfig.db),
    ):
        part = data.setdefault(section, {})
        if isinstance(part, dict) and isinstance(part.get(key, default), str):
            part[key] = _absolute_sqlite(part.get(key, default), data["base_dir"])
    try:
        return from_plain(StudyConfig, data)
    except NasError as err:
        raise err.at(source=source) from None
