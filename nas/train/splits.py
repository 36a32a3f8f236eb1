"""The split policy: one seeded permutation of the pool, then a stratified cut.

The same for every dataset (see ``nas.train.data``), so numbers are comparable across
runs of this tool; the train split's channel statistics are measured here too.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nas.core.errors import NasError
from nas.train.dataset import Dataset, Split

__all__ = ["assemble", "channel_stats", "split_positions"]


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def split_positions(
    y: torch.Tensor, seed: int, val_fraction: float, test_fraction: float, limit: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pool indices of train, val, test: one seeded permutation, then a stratified cut.

    Each sample gets the key ``(rank within its class in shuffled order + 0.5) / class
    size``; sorting by that key interleaves the classes proportionally, so any prefix
    (the test part, then the val part) has every class in its pool share.
    """
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    if limit is not None:
        order = order[:limit]
    n = len(order)
    labels = y[order]
    sorted_labels, by_class = torch.sort(labels, stable=True)
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.int64)
    rank[by_class] = torch.arange(n) - starts[sorted_labels]
    quantile = (rank.to(torch.float64) + 0.5) / counts[labels].to(torch.float64)
    spread = torch.sort(quantile, stable=True).indices
    n_test = _round(n * test_fraction)
    n_val = _round(n * val_fraction)
    if n - n_test - n_val < 1:
        raise NasError(
            f"{n} samples leave none for training after val/test",
            field="limit" if limit else "val_fraction",
        )
    parts = spread[n_test + n_val :], spread[n_test : n_test + n_val], spread[:n_test]
    # Each split keeps the shuffled order, so its classes are not sorted in blocks.
    return tuple(order[torch.sort(p).values] for p in parts)  # type: ignore[return-value]


def assemble(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    limit: int | None,
) -> Dataset:
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    splits = [
        Split(x=xt[i], y=yt[i], indices=i)
        for i in split_positions(yt, seed, val_fraction, test_fraction, limit)
    ]
    mean, std = channel_stats(splits[0].x)
    return Dataset(
        name=name,
        train=splits[0],
        val=splits[1],
        test=splits[2],
        num_classes=num_classes,
        in_channels=int(xt.shape[1]),
        resolution=int(xt.shape[2]),
        mean=mean,
        std=std,
    )


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of x/255 (population std), from exact int64 sums in chunks so
    that CIFAR-sized data never needs a float64 copy."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.int64)
    squares = torch.zeros(c, dtype=torch.int64)
    for chunk in torch.split(x, 2048):
        v = chunk.to(torch.int64)
        total += v.sum(dim=(0, 2, 3))
        squares += (v * v).sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total.to(torch.float64) / count
    var = (squares.to(torch.float64) / count - mean * mean).clamp_(min=0.0)
    std = var.sqrt() / 255.0
    # A constant channel has std 0: divide by 1 instead of by 0.
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple((mean / 255.0).tolist()), tuple(std.tolist())
