"""Helpers shared by the supernet tests."""

from __future__ import annotations

from pathlib import Path

import torch

from nas.model.arch import Architecture, Head, Stage, Stem
from nas.supernet import Supernet

#: Every op the supernet covers with every field elastic (see the file's comments).
ALLOPS = Path(__file__).parent / "data" / "allops.toml"
#: An activation ``allops``' first stage offers.
A = "relu6"


def perturb(net: Supernet, seed: int = 1) -> Supernet:
    """Make every shared tensor matter: random BN statistics and affine pairs, kernel
    transformation matrices away from the identity, non-zero SE biases. (Fresh ones
    would hide a wrong slice: unit BN and identity transforms map many slices alike.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif "matrices" in name:
                t.add_(0.2 * torch.randn(t.shape, generator=g))
            elif name.endswith(("running_mean", "bias")) or ".bn." in name:
                t.copy_(
                    0.3 * torch.randn(t.shape, generator=g)
                    + (1.0 if name.endswith("bn.weight") else 0.0)
                )
    return net


def allops_arch(
    stage0: Stage | None = None,
    *,
    stem: Stem | None = None,
    head: Head | None = None,
    s1: Stage | None = None,
    s2: Stage | None = None,
    **top: object,
) -> Architecture:
    """An ``allops`` architecture: a plain conv stage 0 and identity stage 2 by default."""
    stages = (
        stage0 or Stage("conv", 6, activation=A),
        s1 or Stage("conv", 6),
        s2 or Stage("skip", 6),
    )
    return Architecture(
        resolution=8,
        num_classes=3,
        in_channels=2,
        stem=stem or Stem(4),
        stages=stages,
        head=head if head is not None else Head(8),
        **top,  # type: ignore[arg-type]
    )
