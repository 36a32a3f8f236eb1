"""The proxy registry: a name, what it reads, and the function that scores.

Every proxy is "higher means predicted better", so rank agreement with accuracy is
read the same way for all of them (a proxy that ranks backwards shows a negative rho).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from nas.core.errors import NasError
from nas.model.arch import Architecture

__all__ = ["PROXIES", "Batch", "ProxySpec", "get_proxy", "register_proxy"]


@dataclass(frozen=True, eq=False)
class Batch:
    """One minibatch as the network sees it: normalised float inputs and int64 labels."""

    x: torch.Tensor
    y: torch.Tensor


#: A network proxy scores a freshly initialised network (it may change its weights).
NetworkScore = Callable[[nn.Module, Batch], float]
#: A cost proxy scores the architecture alone (no network, no data).
CostScore = Callable[[Architecture], float]


@dataclass(frozen=True)
class ProxySpec:
    name: str
    help: str
    reads: Literal["network", "arch"]
    fn: Callable[..., float]


PROXIES: dict[str, ProxySpec] = {}


def register_proxy(
    name: str, *, help: str, reads: Literal["network", "arch"] = "network"
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register ``fn`` as proxy ``name``; ``help`` is what ``nas proxies`` shows."""

    def add(fn: Callable[..., float]) -> Callable[..., float]:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} registered twice")
        PROXIES[name] = ProxySpec(name, help, reads, fn)
        return fn

    return add


def get_proxy(name: str) -> ProxySpec:
    if name not in PROXIES:
        raise NasError(f"unknown proxy {name!r} (known: {', '.join(PROXIES)})", field="proxy")
    return PROXIES[name]
