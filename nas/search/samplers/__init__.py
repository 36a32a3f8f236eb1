"""Samplers, one per file, found by name through the registry.

Optuna's NSGA-II, TPE and random search come as they are (NSGA-II made picklable);
regularized evolution, local search and the surrogate-guided BANANAS are ours. Importing this package imports no
Optuna: the study file's rules and the CLI's help read the registry alone, and the
sampler classes load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Registration order is the order the CLI's help and the errors list them in.
# isort: off
from nas.search.samplers import nsga2, tpe, random, rea, ls, bananas  # noqa: F401  (registers)

# isort: on
from nas.search.samplers.registry import (
    SAMPLERS,
    SamplerRequest,
    SamplerSpec,
    get_sampler,
    register_sampler,
)

if TYPE_CHECKING:
    from nas.search.samplers._bananas import BananasSampler
    from nas.search.samplers._categorical import ORIGIN_KEY, PARENT_KEY, RUN_KEY
    from nas.search.samplers._evolution import RegularizedEvolutionSampler
    from nas.search.samplers._local_search import LocalSearchSampler
    from nas.search.samplers._picklable import PicklableNSGAIISampler

__all__ = [
    "ORIGIN_KEY",
    "PARENT_KEY",
    "RUN_KEY",
    "SAMPLERS",
    "BananasSampler",
    "LocalSearchSampler",
    "PicklableNSGAIISampler",
    "RegularizedEvolutionSampler",
    "SamplerRequest",
    "SamplerSpec",
    "get_sampler",
    "register_sampler",
]

#: Public names that live in modules importing Optuna: loaded when first asked for.
_LAZY = {
    "BananasSampler": "_bananas",
    "ORIGIN_KEY": "_categorical",
    "PARENT_KEY": "_categorical",
    "RUN_KEY": "_categorical",
    "RegularizedEvolutionSampler": "_evolution",
    "LocalSearchSampler": "_local_search",
    "PicklableNSGAIISampler": "_picklable",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
