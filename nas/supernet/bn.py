"""BatchNorm re-estimation: the statistics a subnet would have had if trained alone.

A supernet's BN statistics mix every path that ran through it, so a path evaluated
with them is misjudged (OFA, BigNAS). Re-estimating them on a few training batches,
as a cumulative average, is what makes an inherited-weight accuracy meaningful.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from nas.model.arch import Architecture

__all__ = ["reestimate_bn"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

Batch = torch.Tensor | Sequence[torch.Tensor]


def reestimate_bn(
    model: nn.Module, batches: Iterable[Batch], *, arch: Architecture | None = None
) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them on ``batches``
    (tensors, or ``(x, y)`` pairs of which ``x`` is used); returns how many were used.

    ``arch``: the path of a supernet to run (``model(x, arch)``); None runs ``model(x)``.
    The averages are cumulative (momentum None), so each batch counts equally. Only the
    BN layers run in training mode: dropout and stochastic depth stay off, since they
    would change the activations the statistics describe. Momenta and train/eval modes
    are restored afterwards. On a supernet every BN is reset, the path's slices then
    re-estimated: re-estimate each subnet right before evaluating it.
    """
    it = iter(batches)
    first = next(it, None)
    if first is None:
        raise ValueError("BN re-estimation needs at least one batch")
    norms = [m for m in model.modules() if isinstance(m, _NORMS)]
    modes = [(m, m.training) for m in model.modules()]
    momenta = [m.momentum for m in norms]
    param = next(model.parameters(), None)
    n = 0
    try:
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        with torch.no_grad():
            for batch in itertools.chain([first], it):
                x = batch if isinstance(batch, torch.Tensor) else batch[0]
                if param is not None:
                    x = x.to(device=param.device, dtype=param.dtype)
                model(x) if arch is None else model(x, arch)
                n += 1
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        for m, training in modes:
            m.training = training
    return n
