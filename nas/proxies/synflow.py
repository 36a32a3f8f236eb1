"""synflow (Tanaka et al. 2020): the "synaptic flow" through the network with every
weight made positive, on an all-ones input, needing no data and no labels."""

from __future__ import annotations

import torch
from torch import nn

from nas.proxies._layers import weighted
from nas.proxies.registry import Batch, register_proxy


@register_proxy(
    "synflow", help="sum of weight * d(sum of outputs)/d(weight), weights made positive"
)
def synflow(model: nn.Module, batch: Batch) -> float:
    # Normalisation in eval mode with its initial statistics is the identity (up to eps),
    # as the authors score networks without it; float64 keeps deep products finite.
    model.eval().double()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones((1, *batch.x.shape[1:]), dtype=torch.float64, device=batch.x.device)
    model(ones).sum().backward()
    with torch.no_grad():
        return float(
            sum(
                (m.weight * m.weight.grad).sum()
                for m in weighted(model)
                if m.weight.grad is not None
            )
        )
