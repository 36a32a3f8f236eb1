"""Local search with restarts (nas.search.samplers._local_search), never proposing a
network twice; Pareto local search with several objectives."""

from __future__ import annotations

from typing import Any

from nas.search.samplers.registry import SamplerRequest, register_sampler

__all__ = ["ls"]


@register_sampler("ls", help="local search with restarts", multi_objective=True)
def ls(request: SamplerRequest) -> Any:
    from nas.search.samplers._local_search import LocalSearchSampler

    return LocalSearchSampler(n_startup=10, n_restart=3, seed=request.seed, key=request.key)
