"""Proxies from how a batch's inputs are told apart at initialisation: jacob_cov
(Mellor et al. 2020, v1) and NASWOT (Mellor et al. 2021)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nas.proxies._layers import ACTIVATIONS
from nas.proxies.registry import Batch, register_proxy

#: Keeps the log finite for (near-)zero eigenvalues, as in the paper.
_JACOB_K = 1e-5


@register_proxy("jacob_cov", help="how uncorrelated the input-output Jacobians of a batch are")
def jacob_cov(model: nn.Module, batch: Batch) -> float:
    model.train()
    x = batch.x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    jacobians = x.grad.reshape(len(x), -1).double().cpu().numpy()
    corr = np.corrcoef(jacobians)
    v = np.linalg.eigvalsh(np.nan_to_num(corr))
    return float(-np.sum(np.log(v + _JACOB_K) + 1.0 / (v + _JACOB_K)))


@register_proxy("naswot", help="log-determinant of the batch's activation-pattern kernel")
def naswot(model: nn.Module, batch: Batch) -> float:
    n = len(batch.x)
    kernel = torch.zeros((n, n), dtype=torch.float64, device=batch.x.device)

    # A pre-hook: activations run in place, so the input must be read before they do.
    def add_codes(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    hooks = [
        m.register_forward_pre_hook(add_codes)
        for m in model.modules()
        if isinstance(m, ACTIVATIONS)
    ]
    try:
        model.train()
        with torch.no_grad():
            model(batch.x)
    finally:
        for h in hooks:
            h.remove()
    return float(torch.linalg.slogdet(kernel)[1])
