"""NSGA-II (Optuna's, picklable for Ray Tune), never proposing a network twice."""

from __future__ import annotations

from typing import Any

from nas.search.samplers.registry import SamplerRequest, register_sampler

__all__ = ["nsga2"]


@register_sampler("nsga2", help="NSGA-II", multi_objective=True)
def nsga2(request: SamplerRequest) -> Any:
    from nas.search.samplers._picklable import PicklableNSGAIISampler

    # Short NAS budgets (tens to hundreds of trials) want a small population.
    population = max(4, min(50, request.trials // 4))
    return PicklableNSGAIISampler(
        population_size=population,
        seed=request.seed,
        constraints_func=request.constraints,
        key=request.key,
    )
