"""Proxies from one backward pass of the training loss: grad_norm and snip
(Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS")."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nas.proxies._layers import weighted
from nas.proxies.registry import Batch, register_proxy


def _loss_gradients(model: nn.Module, batch: Batch) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(batch.x), batch.y).backward()


@register_proxy("grad_norm", help="sum over layers of the L2 norm of the loss gradient")
def grad_norm(model: nn.Module, batch: Batch) -> float:
    _loss_gradients(model, batch)
    with torch.no_grad():
        return float(
            sum(m.weight.grad.norm() for m in weighted(model) if m.weight.grad is not None)
        )


@register_proxy("snip", help="connection sensitivity: sum of |weight * loss gradient|")
def snip(model: nn.Module, batch: Batch) -> float:
    _loss_gradients(model, batch)
    with torch.no_grad():
        return float(
            sum(
                (m.weight * m.weight.grad).abs().sum()
                for m in weighted(model)
                if m.weight.grad is not None
            )
        )
