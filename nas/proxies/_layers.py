"""Which modules carry the weights and which are the nonlinearities proxies look at."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

#: Weighted layers whose parameters the gradient proxies sum over (as the proxies'
#: authors do: convolutions and linear layers, not normalisation).
WEIGHTED = (nn.Conv2d, nn.Linear)
#: Activations whose sign pattern NASWOT reads (SE gates' sigmoids are not codes).
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.GELU)


def weighted(model: nn.Module) -> Iterator[nn.Module]:
    return (m for m in model.modules() if isinstance(m, WEIGHTED))
