"""Independent counters: what the built module says, never what nas.cost says."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.arch import Architecture
from nas.builder import build


def counted_params(arch: Architecture) -> int:
    return sum(p.numel() for p in build(arch).parameters())


def counted_macs(arch: Architecture) -> int:
    """torch's FlopCounterMode on the built module (run on the meta device: no compute)."""
    model = build(arch).eval().to("meta")
    x = torch.empty(1, arch.in_channels, arch.resolution, arch.resolution, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2
