"""How well each proxy ranks networks whose trained accuracy is known: Spearman's rho
and Kendall's tau against accuracy, with bootstrap intervals, beside the baselines
(params, macs) a proxy has to beat before it is worth trusting on a space."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.core.stats import Interval, bootstrap, kendall_tau, spearman
from nas.model.arch import Architecture
from nas.proxies.registry import PROXIES, Batch
from nas.proxies.scoring import score

__all__ = ["Agreement", "agreement"]


@dataclass(frozen=True)
class Agreement:
    """One proxy's rank agreement with accuracy over ``n`` networks."""

    proxy: str
    n: int
    spearman: Interval
    kendall: Interval
    #: Median seconds the proxy took per network.
    seconds: float


def agreement(
    networks: Sequence[tuple[Architecture, float]],
    batch: Batch,
    names: Sequence[str] | None = None,
    *,
    seed: int = 0,
    resamples: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> list[Agreement]:
    """Score every network with each proxy and compare with its accuracy; best first by
    Spearman's rho. ``networks``: (architecture, trained validation accuracy)."""
    names = list(names or PROXIES)
    if len(networks) < 3:
        raise ValueError("rank agreement needs at least 3 networks")
    values: dict[str, list[float]] = {n: [] for n in names}
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for k, (arch, _) in enumerate(networks):
        for name, s in score(arch, batch, names, seed=seed).items():
            values[name].append(s.value)
            seconds[name].append(s.seconds)
        if progress:
            progress(k + 1, len(networks))
    accuracy = np.array([a for _, a in networks], dtype=float)
    out = []
    for name in names:
        v = np.nan_to_num(np.array(values[name]), nan=-np.inf, posinf=np.finfo(float).max)
        out.append(
            Agreement(
                name,
                len(networks),
                bootstrap(spearman, v, accuracy, resamples=resamples, seed=seed),
                bootstrap(kendall_tau, v, accuracy, resamples=resamples, seed=seed),
                float(np.median(seconds[name])),
            )
        )
    return sorted(out, key=lambda a: -a.spearman.value)
