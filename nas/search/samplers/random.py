"""Optuna's random search: the baseline every other sampler has to beat."""

from __future__ import annotations

from typing import Any

from nas.search.samplers.registry import SamplerRequest, register_sampler

__all__ = ["random"]


@register_sampler("random", help="random search", multi_objective=True)
def random(request: SamplerRequest) -> Any:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=request.seed)
