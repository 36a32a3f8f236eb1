"""How well each zero-cost proxy ranks the networks a study has already trained.

A proxy is only worth trusting on a space where it orders networks like their trained
accuracy does, and better than their size; the study's stored evaluations are the
ground truth to check that against, at no extra training (``nas proxies STUDY``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import NasError
from nas.proxies import PROXIES, Agreement, agreement, draw_batch, get_proxy
from nas.search.config import StudyConfig
from nas.search.results import EvaluationStore

__all__ = ["MIN_NETWORKS", "ProxyCheck", "check_proxies"]

#: Fewer networks than this give intervals too wide to tell any proxy from another.
MIN_NETWORKS = 5


@dataclass(frozen=True)
class ProxyCheck:
    study: str
    storage: str
    #: Distinct networks scored (each one's accuracy: the mean of its complete trainings).
    n: int
    batch_size: int
    seed: int
    device: str
    #: Best first by Spearman's rho.
    rows: tuple[Agreement, ...]


def check_proxies(
    study: StudyConfig,
    names: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
    resamples: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> ProxyCheck:
    """Score ``names`` (all registered proxies by default, the baselines params and macs
    among them) on each network the study trained to completion, against its validation
    accuracy. Every refusal comes before any data is loaded and writes nothing."""
    names = list(names or PROXIES)
    for name in names:
        get_proxy(name)  # names the field when unknown
    if study.tabular.benchmark:
        raise NasError(
            "a tabular study looks accuracies up and has no data: zero-cost proxies score "
            "networks on a minibatch of the study's images",
            field="tabular.benchmark",
            source=study.source,
        )
    networks = _trained(study)
    if len(networks) < MIN_NETWORKS:
        raise NasError(
            f"study {study.name} has {len(networks)} network(s) trained to completion in "
            f"{study.search.storage}; ranking proxies needs at least {MIN_NETWORKS} "
            "(run `nas search` first)",
            field="search.storage",
            source=study.source,
        )
    resolutions = {arch.resolution for arch, _ in networks}
    if len(resolutions) > 1:  # one batch for all: the networks must read the same input
        raise NasError(
            f"the study's networks read inputs of {len(resolutions)} resolutions "
            f"({', '.join(map(str, sorted(resolutions)))} px): proxies compare them on one batch",
            field="resolution",
            source=study.source,
        )
    from nas.search.setup import study_data
    from nas.train.device import resolve_device

    torch_device = resolve_device(device)
    data = study_data(study)
    batch = draw_batch(
        data, size=batch_size, seed=seed, resolution=resolutions.pop(), device=str(torch_device)
    )
    rows = agreement(networks, batch, names, seed=seed, resamples=resamples, progress=progress)
    return ProxyCheck(
        study.name, study.search.storage, len(networks), len(batch.x), seed, str(torch_device),
        tuple(rows),
    )  # fmt: skip


def _trained(study: StudyConfig):
    """(architecture, mean validation accuracy) of each network with a complete training."""
    url = study.search.storage
    prefix = "sqlite:///"
    if url.startswith(prefix) and "memory" not in url and not Path(url[len(prefix) :]).exists():
        return []  # opening it would create the file: nothing is written on refusal
    accuracies = defaultdict(list)
    first = {}
    for e in EvaluationStore(url).of_study(study.name):
        if e.status == "complete":
            accuracies[e.arch_id].append(e.val_accuracy)
            first.setdefault(e.arch_id, e)
    return [(first[a].arch, sum(v) / len(v)) for a, v in accuracies.items()]
