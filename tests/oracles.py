"""Independent counters: what the built module says, never what nas.model.cost says."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.model.arch import Architecture
from nas.model.builder import build


def _meta_model(arch: Architecture) -> torch.nn.Module:
    """The real module structure on the meta device: shapes without memory or compute."""
    with torch.device("meta"):
        return build(arch, seed=None).eval()


def counted_params(arch: Architecture) -> int:
    return sum(p.numel() for p in _meta_model(arch).parameters())


def counted_macs(arch: Architecture) -> int:
    """torch's FlopCounterMode on the built module."""
    model = _meta_model(arch)
    x = torch.empty(1, arch.in_channels, arch.resolution, arch.resolution, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2
