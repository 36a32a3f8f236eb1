"""Scoring a network with the registered proxies: a fresh, seeded network per proxy
(some change its weights), one batch drawn by seed, and the time each proxy took."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nas.model.arch import Architecture
from nas.model.builder import build
from nas.model.threads import torch_threads
from nas.proxies.registry import PROXIES, Batch, get_proxy
from nas.train.data import Dataset

__all__ = ["ProxyScore", "draw_batch", "score"]


@dataclass(frozen=True)
class ProxyScore:
    value: float
    seconds: float


def draw_batch(
    data: Dataset,
    *,
    size: int = 64,
    seed: int = 0,
    resolution: int | None = None,
    device: str = "cpu",
) -> Batch:
    """``size`` training images drawn by ``seed``, normalised as training feeds them."""
    generator = torch.Generator().manual_seed(seed)
    n = len(data.train)
    rows = torch.randperm(n, generator=generator)[: min(size, n)]
    x = data.normalise(data.train.x[rows].to(device), resolution)
    return Batch(x=x, y=data.train.y[rows].to(device))


def score(
    arch: Architecture,
    batch: Batch | None,
    names: Sequence[str] | None = None,
    *,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, ProxyScore]:
    """Each named proxy (all registered ones by default) of ``arch`` on ``batch`` (None:
    there are no data, as in a tabular study; only the proxies that read the
    architecture alone can score then). ``threads``: torch's intra-op threads meanwhile
    (None: as set); one minibatch is too little work to split across threads, and on a
    shared machine the extra threads only wait for cores."""
    with torch_threads(threads):
        return _score(arch, batch, names, seed)


def _score(
    arch: Architecture, batch: Batch | None, names: Sequence[str] | None, seed: int
) -> dict[str, ProxyScore]:
    out: dict[str, ProxyScore] = {}
    for name in names or list(PROXIES):
        spec = get_proxy(name)
        start = time.perf_counter()
        if spec.reads == "arch":
            value = spec.fn(arch)
        elif batch is None:
            raise ValueError(f"proxy {name} scores a network on data, and none were given")
        else:
            model = build(arch, seed=seed).to(batch.x.device)
            value = spec.fn(model, batch)
        out[name] = ProxyScore(value, time.perf_counter() - start)
    return out
