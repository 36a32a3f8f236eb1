"""Subnet extraction: a path of the supernet as an ordinary network."""

from __future__ import annotations

import torch

from nas.model.arch import Architecture
from nas.model.builder import Network, build
from nas.supernet.supernet import Supernet

__all__ = ["extract", "extract_network"]


def extract(supernet: Supernet, arch: Architecture) -> tuple[Architecture, dict[str, torch.Tensor]]:
    """``arch`` and the state dict that makes ``build(arch)`` compute the supernet's path
    (transformed kernels, weight and BN-statistic slices, all copied). A one-line
    NasError naming the field when ``arch`` is outside the supernet."""
    return arch, supernet.state_of(arch)


def extract_network(supernet: Supernet, arch: Architecture) -> Network:
    """``build(arch)`` with the extracted state loaded strictly, in the supernet's mode,
    on the device and dtype of its weights."""
    _, state = extract(supernet, arch)
    net = build(arch, seed=None)
    net.load_state_dict(state, strict=True)
    weight = supernet.stem.conv.weight
    return net.to(device=weight.device, dtype=weight.dtype).train(supernet.training)
