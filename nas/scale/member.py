"""One member of a compound-scaled family, its cost aimed at ``growth**phi`` times the base's.

On small networks rounding makes cost a step function of ``phi``; the member is the
scaled network, over a window of ``phi'`` (and optionally of resolutions), whose cost is
nearest the aim. Plain Python over ``Architecture`` values, like ``nas.scale.compound``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from nas.core.errors import NasError
from nas.core.strict import is_number, positive_int, positive_number
from nas.model.arch import Architecture
from nas.scale.compound import Coefficients, round_resolution, scale

__all__ = ["family_member"]


def family_member(
    arch: Architecture,
    coeffs: Coefficients,
    phi: float,
    *,
    cost: Callable[[Architecture], float],
    base_cost: float | None = None,
    target_cost: float | None = None,
    growth: float = 2.0,
    search_width: float = 0.5,
    steps: int = 41,
    divisor: int = 8,
    resolution_multiple: int = 1,
    resolution_steps: int = 0,
) -> tuple[Architecture, float]:
    """The family member for ``phi``, and the effective ``phi'`` it was scaled with.

    Our rule: the member's ``cost`` (MACs, predicted latency, ...) should be about
    ``growth**phi`` times the base's. Plain ``scale(arch, coeffs.at(phi))`` does that on
    EfficientNet-sized networks, but on small ones rounding makes cost a step function
    of ``phi``: ``ceil`` doubles a one-block stage for any depth above 1, and channels
    move in steps of ``divisor`` (16 channels need width 1.25 to become 24). So the
    network is scaled at each of ``steps`` evenly spaced ``phi'`` in
    ``[phi - search_width, phi + search_width]`` (``phi' >= 0``), and the one whose cost
    is nearest to ``growth**phi * base_cost`` in log ratio wins (ties: the ``phi'``
    nearest ``phi``, then the smaller). ``phi`` itself is always a candidate, so the pick
    is never further from the target than plain scaling; ``search_width=0`` is plain
    scaling.

    Limit: a jump bigger than ``growth`` cannot be split. When a network's cost sits
    mostly in one-block stages, any ``phi' > 0`` doubles them (or more: the added
    block runs at the stage's output width), so ``phi = 1`` may land well away from 2x
    whatever the window; stages of two or more blocks grow in finer steps.

    ``resolution_steps`` > 0 also lets the resolution move up to that many multiples of
    ``resolution_multiple`` off ``round(base * gamma**phi')`` (never below the base's): the
    finest-grained knob absorbs what depth and width rounding leave (a 28 px input moves
    MACs in ~7% steps), so small networks land near ``growth**phi`` too.

    ``target_cost`` replaces ``growth**phi * base_cost`` as the aim: a family built step
    by step aims each member at ``growth`` times the previous one's actual cost, so that
    rounding errors do not compound from step to step.

    ``phi == 0`` returns ``arch`` itself with ``phi' = 0``. ``base_cost`` defaults to
    ``cost(arch)``; ``cost`` is called once per distinct scaled network.
    """
    if not is_number(phi):
        raise NasError(f"must be a number, got {phi!r}", field="phi")
    if not (math.isfinite(phi) and phi >= 0):
        raise NasError(f"must be a finite number >= 0, got {phi}", field="phi")
    positive_number(growth, "growth")
    positive_int(steps, "steps")
    if not (is_number(search_width) and math.isfinite(search_width) and search_width >= 0):
        raise NasError(f"must be a finite number >= 0, got {search_width}", field="search_width")
    if phi == 0:
        return arch, 0.0
    if target_cost is None:
        if base_cost is None:
            base_cost = cost(arch)
        positive_number(base_cost, "base_cost")
        target_cost = base_cost * growth**phi
    positive_number(target_cost, "target_cost")
    if not (isinstance(resolution_steps, int) and resolution_steps >= 0):
        raise NasError(
            f"must be an integer >= 0, got {resolution_steps!r}", field="resolution_steps"
        )
    return _nearest(
        arch,
        coeffs,
        phi,
        _candidates(phi, search_width, steps),
        cost=cost,
        log_target=math.log(target_cost),
        divisor=divisor,
        resolution_multiple=resolution_multiple,
        resolution_steps=resolution_steps,
    )


def _candidates(phi: float, search_width: float, steps: int) -> set[float]:
    """``steps`` evenly spaced ``phi'`` in ``[phi - search_width, phi + search_width]``
    (never below 0), and ``phi`` itself, which always competes (even ``steps`` skip it)."""
    candidates = {float(phi)}
    if steps > 1:
        spacing = 2 * search_width / (steps - 1)
        half = (steps - 1) / 2
        candidates.update(max(0.0, round(phi + (k - half) * spacing, 12)) for k in range(steps))
    return candidates


def _nearest(
    arch: Architecture,
    coeffs: Coefficients,
    phi: float,
    candidates: set[float],
    *,
    cost: Callable[[Architecture], float],
    log_target: float,
    divisor: int,
    resolution_multiple: int,
    resolution_steps: int,
) -> tuple[Architecture, float]:
    """The scaled network whose cost is nearest the target in log ratio, and its ``phi'``
    (ties: the ``phi'`` nearest ``phi``, the resolution nearest nominal, the smaller)."""
    costs: dict[str, float] = {}
    best: tuple[float, float, int, float] | None = None
    best_arch = arch
    for p in sorted(candidates):
        m = coeffs.at(p)
        nominal = round_resolution(arch.resolution, m.resolution, resolution_multiple)
        for k in range(-resolution_steps, resolution_steps + 1):
            res = nominal + k * resolution_multiple
            if res < arch.resolution and k != 0:
                continue
            member = scale(arch, m, divisor=divisor, resolution=res)
            if member.id not in costs:
                value = cost(member)
                positive_number(value, "cost")
                costs[member.id] = float(value)
            key = (abs(math.log(costs[member.id]) - log_target), abs(p - phi), abs(k), p)
            if best is None or key < best:
                best, best_arch = key, member
    assert best is not None
    return best_arch, best[3]
