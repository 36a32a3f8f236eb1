"""Optuna's TPE, multivariate over groups of parameters that appear together."""

from __future__ import annotations

from typing import Any

from nas.search.samplers.registry import SamplerRequest, register_sampler

__all__ = ["tpe"]


@register_sampler("tpe", help="multivariate TPE", multi_objective=True)
def tpe(request: SamplerRequest) -> Any:
    # Group: a conditional space's parameters come and go with the ops that read them.
    from optuna.samplers import TPESampler

    return TPESampler(
        seed=request.seed, multivariate=True, group=True, constraints_func=request.constraints
    )
