"""Regularized evolution (nas.search.samplers._evolution), never proposing a network twice."""

from __future__ import annotations

from typing import Any

from nas.search.samplers.registry import SamplerRequest, register_sampler

__all__ = ["rea"]


@register_sampler("rea", help="regularized evolution, one objective", multi_objective=False)
def rea(request: SamplerRequest) -> Any:
    from nas.search.samplers._evolution import RegularizedEvolutionSampler

    # Short NAS budgets (tens to hundreds of trials) want a small population.
    population = max(4, min(20, request.trials // 4))
    return RegularizedEvolutionSampler(
        population_size=population,
        sample_size=max(2, population // 4),
        seed=request.seed,
        key=request.key,
    )
