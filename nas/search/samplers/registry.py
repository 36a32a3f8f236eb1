"""Samplers are found by name here and nowhere else (no if/elif on sampler names).

A registration is a factory plus what the study file's rules need to know about it.
This module imports neither Optuna nor torch: reading a study file and building the
CLI's help only need the names, the help lines and what each sampler supports; a
factory imports its sampler when it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.errors import NasError

__all__ = ["SAMPLERS", "SamplerRequest", "SamplerSpec", "get_sampler", "register_sampler"]


@dataclass(frozen=True)
class SamplerRequest:
    """What a study gives every sampler; each factory takes the parts it uses."""

    seed: int
    #: The study's trial budget (population sizes scale with it).
    trials: int
    #: ``key(params) -> hashable``: the network a params dict stands for (dedup).
    key: Callable[[Mapping[str, Any]], Hashable] | None = None
    #: Optuna's ``constraints_func`` (values <= 0 are feasible), None without constraints.
    constraints: Callable[[Any], list[float]] | None = None
    #: ``canonical(params) -> params``: one form for params that differ only in what cannot
    #: change the network (a cell's dead edges set to ``none``), what a surrogate should
    #: see; None: params as they are.
    canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None


#: ``factory(request)`` -> an Optuna sampler.
Factory = Callable[[SamplerRequest], Any]


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: its name, one line of help, and what it supports."""

    name: str
    help: str
    #: Whether it handles several objectives (a pareto study needs one that does).
    multi_objective: bool
    factory: Factory

    def build(self, request: SamplerRequest) -> Any:
        return self.factory(request)


SAMPLERS: dict[str, SamplerSpec] = {}


def register_sampler(
    name: str, *, help: str, multi_objective: bool
) -> Callable[[Factory], Factory]:
    """Function decorator: register ``factory`` under ``name`` (order: the CLI's)."""

    def add(factory: Factory) -> Factory:
        if name in SAMPLERS:
            raise RuntimeError(f"sampler {name!r} registered twice")
        SAMPLERS[name] = SamplerSpec(name, help, multi_objective, factory)
        return factory

    return add


def get_sampler(name: str, *, field: str = "sampler") -> SamplerSpec:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise NasError(
            f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})", field=field
        ) from None
