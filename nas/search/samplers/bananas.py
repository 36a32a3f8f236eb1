"""BANANAS-style surrogate-guided search (nas.search.samplers._bananas): an ensemble of
small MLPs ranks unseen networks by expected (hypervolume) improvement."""

from __future__ import annotations

from typing import Any

from nas.search.samplers.registry import SamplerRequest, register_sampler

__all__ = ["bananas"]


@register_sampler(
    "bananas", help="surrogate-guided (MLP ensemble, expected improvement)", multi_objective=True
)
def bananas(request: SamplerRequest) -> Any:
    from nas.search.samplers._bananas import BananasSampler

    return BananasSampler(seed=request.seed, key=request.key, canonical=request.canonical)
