"""Weight-sharing supernets (Once-for-All style) over our search spaces.

``Supernet(space)`` holds, per stage and op family, the widest weights of every block
the space can build (NAS-Bench-201 cells: per edge and conv op); ``forward(x, arch)``
runs ``arch``'s path; ``extract`` turns a path into the state dict of
``nas.model.builder.build(arch)`` with equal outputs; ``reestimate_bn`` re-estimates
BatchNorm statistics for one path or network; ``sandwich_step`` trains it by the
sandwich rule with in-place distillation; ``train_supernet`` runs that resumably by a
``SupernetRecipe``, ``nas.supernet.store`` keeps trained ones, ``score_subnets`` rates
subnets with inherited weights.

The names below load on first use: a study file reads ``nas.supernet.recipe`` without
importing torch through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.supernet.bn import reestimate_bn
    from nas.supernet.extraction import extract, extract_network
    from nas.supernet.extremes import largest, smallest
    from nas.supernet.layers import KernelTransform
    from nas.supernet.recipe import SupernetRecipe
    from nas.supernet.sandwich import Precision, Sandwich, SandwichLoss, sandwich_step
    from nas.supernet.scoring import score_subnets
    from nas.supernet.spec import SupernetSpec
    from nas.supernet.store import checkpoint_path, load_supernet, save_checkpoint
    from nas.supernet.supernet import Path, Step, Supernet
    from nas.supernet.training import train_supernet

#: Public name -> the module that defines it.
_HOME = {
    "KernelTransform": "layers",
    "Path": "supernet",
    "Precision": "sandwich",
    "Sandwich": "sandwich",
    "SandwichLoss": "sandwich",
    "Step": "supernet",
    "Supernet": "supernet",
    "SupernetRecipe": "recipe",
    "SupernetSpec": "spec",
    "checkpoint_path": "store",
    "extract": "extraction",
    "extract_network": "extraction",
    "largest": "extremes",
    "load_supernet": "store",
    "reestimate_bn": "bn",
    "sandwich_step": "sandwich",
    "save_checkpoint": "store",
    "score_subnets": "scoring",
    "smallest": "extremes",
    "train_supernet": "training",
}

__all__ = [
    "KernelTransform",
    "Path",
    "Precision",
    "Sandwich",
    "SandwichLoss",
    "Step",
    "Supernet",
    "SupernetRecipe",
    "SupernetSpec",
    "checkpoint_path",
    "extract",
    "extract_network",
    "largest",
    "load_supernet",
    "reestimate_bn",
    "sandwich_step",
    "save_checkpoint",
    "score_subnets",
    "smallest",
    "train_supernet",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
