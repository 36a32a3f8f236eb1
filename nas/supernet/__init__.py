"""Weight-sharing supernets (Once-for-All style) over our search spaces.

``Supernet(space)`` holds, per stage and op family, the widest weights of every block
the space can build (NAS-Bench-201 cells: per edge and conv op); ``forward(x, arch)`` runs ``arch``'s path; ``extract`` turns a
path into the state dict of ``nas.model.builder.build(arch)`` with equal outputs;
``reestimate_bn`` re-estimates BatchNorm statistics for one path or network;
``sandwich_step`` trains it by the sandwich rule with in-place distillation.
"""

from __future__ import annotations

from nas.supernet.bn import reestimate_bn
from nas.supernet.extract import extract, extract_network
from nas.supernet.extremes import largest, smallest
from nas.supernet.layers import KernelTransform
from nas.supernet.sandwich import Sandwich, SandwichLoss, sandwich_step
from nas.supernet.spec import SupernetSpec
from nas.supernet.supernet import Path, Step, Supernet

__all__ = [
    "KernelTransform",
    "Path",
    "Sandwich",
    "SandwichLoss",
    "Step",
    "Supernet",
    "SupernetSpec",
    "extract",
    "extract_network",
    "largest",
    "reestimate_bn",
    "sandwich_step",
    "smallest",
]
