"""The baselines every proxy must beat (ZiCo found many do not): the network's size."""

from __future__ import annotations

from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.proxies.registry import register_proxy


@register_proxy("params", help="parameter count (baseline)", reads="arch")
def params(arch: Architecture) -> float:
    return float(cost(arch).params)


@register_proxy("macs", help="multiply-accumulates of one image (baseline)", reads="arch")
def macs(arch: Architecture) -> float:
    return float(cost(arch).macs)
