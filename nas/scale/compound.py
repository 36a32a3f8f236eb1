"""EfficientNet compound scaling: grow one network along depth, width and resolution.

The rules are those of the EfficientNet reference implementation
(``tensorflow/tpu`` ``efficientnet_model.round_filters`` / ``round_repeats``, which
torchvision's ``_make_divisible`` and ``ceil(depth * n)`` repeat):

* channels ``round_filters(c, width)``: ``c * width`` to the nearest multiple of 8, never
  below 90% of ``c * width``;
* repeats ``ceil(n * depth)``;
* resolution ``round(base * r)``, optionally snapped to a multiple.

Compound scaling (Tan & Le, 2019) ties the three to one coefficient ``phi``:
``depth = alpha**phi``, ``width = beta**phi``, ``resolution = gamma**phi`` under
``alpha * beta**2 * gamma**2 ~= 2``, so FLOPs grow about ``2**phi``. ``grid`` lists the
candidate ``(alpha, beta, gamma)``; ``nas.scale.member.family_member`` builds the
network for one ``phi`` and corrects for rounding on small networks.

Plain Python over ``Architecture`` values: no torch, Ray or Optuna here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from nas.core.errors import NasError
from nas.core.strict import is_number, positive_int, positive_number
from nas.model.arch import Architecture
from nas.model.reference import load_arch

__all__ = [
    "EFFICIENTNET_COEFFICIENTS",
    "EFFICIENTNET_MULTIPLIERS",
    "Coefficients",
    "EfficientNetParams",
    "Multipliers",
    "efficientnet",
    "grid",
    "grid_by",
    "round_filters",
    "round_repeats",
    "round_resolution",
    "scale",
]


def _positive_floats(obj: object, *names: str) -> None:
    """Check each field is a finite number > 0 and store it as a float (frozen)."""
    for name in names:
        positive_number(getattr(obj, name), name)
        object.__setattr__(obj, name, float(getattr(obj, name)))


# -- rounding rules -----------------------------------------------------------------


def round_filters(
    channels: int, width: float, divisor: int = 8, min_depth: int | None = None
) -> int:
    """Channels ``channels * width`` rounded as EfficientNet's reference does.

    ``new = max(min_depth, int(f + divisor / 2) // divisor * divisor)`` with
    ``f = channels * width`` and ``min_depth`` defaulting to ``divisor``; when that rounds
    down by more than 10% (``new < 0.9 * f``), ``divisor`` is added back.

    Width 1.0 is rounded too, as in the reference (it skips rounding only for a falsy
    multiplier, which is an error here): channels already a multiple of ``divisor`` (and
    at least ``min_depth``) come back unchanged, as do all of EfficientNet-B0's, but
    e.g. 11 becomes 16.
    """
    positive_int(channels, "channels")
    positive_number(width, "width")
    positive_int(divisor, "divisor")
    if min_depth is not None:
        positive_int(min_depth, "min_depth")
    filters = channels * width
    min_depth = min_depth or divisor
    new = max(min_depth, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks in a scaled stage: ``ceil(depth * repeats)`` (the reference's rule)."""
    positive_int(repeats, "repeats")
    positive_number(depth, "depth")
    return math.ceil(depth * repeats)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def round_resolution(base: int, r: float, multiple: int = 1) -> int:
    """``base * r`` rounded to the nearest integer, then to the nearest multiple of
    ``multiple`` (1: no snapping), never below ``multiple``.

    Ties round up (``floor(x + 0.5)``), not to even as Python's ``round`` does, so that
    e.g. 36 snaps to 40 with ``multiple=8`` rather than to 32.
    """
    positive_int(base, "resolution")
    positive_number(r, "resolution_multiplier")
    positive_int(multiple, "resolution_multiple")
    size = _round_half_up(base * r)
    return max(multiple, _round_half_up(size / multiple) * multiple)


# -- multipliers and coefficients ---------------------------------------------------


@dataclass(frozen=True)
class Multipliers:
    """How much to grow each dimension: repeats x depth, channels x width, pixels x
    resolution."""

    depth: float
    width: float
    resolution: float

    def __post_init__(self) -> None:
        _positive_floats(self, "depth", "width", "resolution")


@dataclass(frozen=True)
class Coefficients:
    """Compound-scaling bases: ``phi`` gives depth ``alpha**phi``, width ``beta**phi``,
    resolution ``gamma**phi``."""

    alpha: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        _positive_floats(self, "alpha", "beta", "gamma")

    def at(self, phi: float) -> Multipliers:
        if not is_number(phi) or not math.isfinite(phi):
            raise NasError(f"must be a finite number, got {phi!r}", field="phi")
        return Multipliers(depth=self.alpha**phi, width=self.beta**phi, resolution=self.gamma**phi)

    @property
    def flops_factor(self) -> float:
        """FLOPs growth per unit of ``phi``: ``alpha * beta**2 * gamma**2`` (depth is
        linear in FLOPs, width and resolution quadratic)."""
        return self.alpha * self.beta**2 * self.gamma**2


#: The coefficients EfficientNet's grid search found on B0 (depth, width, resolution).
EFFICIENTNET_COEFFICIENTS = Coefficients(alpha=1.2, beta=1.1, gamma=1.15)


# -- scaling an architecture --------------------------------------------------------


def _label(x: float) -> str:
    return f"{x:.4g}"


def scale(
    arch: Architecture,
    m: Multipliers,
    *,
    divisor: int = 8,
    resolution_multiple: int = 1,
    resolution: int | None = None,
) -> Architecture:
    """``arch`` grown by ``m``: stem, stage and head channels (a head of 0 stays 0) by
    ``round_filters``, every stage's repeats by ``round_repeats``, the resolution by
    ``round_resolution`` unless ``resolution`` is given (the published EfficientNets
    state theirs: B1 240, B2 260).

    Everything else (op, kernel, stride, expansion, SE ratio, activations, dropout,
    drop path, eps) is kept. SE width follows by itself: the ``ir`` op derives it from
    each block's input channels, as the reference does. The name records the
    multipliers; ``id`` ignores it.
    """
    if not isinstance(m, Multipliers):
        raise NasError(f"expected Multipliers, got {type(m).__name__}", field="multipliers")
    positive_int(divisor, "divisor")
    positive_int(resolution_multiple, "resolution_multiple")
    if resolution is None:
        resolution = round_resolution(arch.resolution, m.resolution, resolution_multiple)
    else:
        positive_int(resolution, "resolution")

    def filters(c: int) -> int:
        return round_filters(c, m.width, divisor)

    stages = tuple(
        replace(s, out_channels=filters(s.out_channels), repeats=round_repeats(s.repeats, m.depth))
        for s in arch.stages
    )
    head = arch.head
    if head.channels > 0:
        head = replace(head, channels=filters(head.channels))
    name = f"{arch.name or 'arch'}_d{_label(m.depth)}_w{_label(m.width)}_r{_label(m.resolution)}"
    return replace(
        arch,
        resolution=resolution,
        stem=replace(arch.stem, channels=filters(arch.stem.channels)),
        stages=stages,
        head=head,
        name=name,
    )


# -- the published EfficientNets ----------------------------------------------------


class EfficientNetParams(NamedTuple):
    """One row of the reference's ``efficientnet_params`` table."""

    width: float
    depth: float
    resolution: int
    dropout: float


#: The reference implementation's ``efficientnet_params``: (width, depth, resolution, dropout).
EFFICIENTNET_MULTIPLIERS: dict[str, EfficientNetParams] = {
    "b0": EfficientNetParams(1.0, 1.0, 224, 0.2),
    "b1": EfficientNetParams(1.0, 1.1, 240, 0.2),
    "b2": EfficientNetParams(1.1, 1.2, 260, 0.3),
    "b3": EfficientNetParams(1.2, 1.4, 300, 0.3),
    "b4": EfficientNetParams(1.4, 1.8, 380, 0.4),
    "b5": EfficientNetParams(1.6, 2.2, 456, 0.4),
    "b6": EfficientNetParams(1.8, 2.6, 528, 0.5),
    "b7": EfficientNetParams(2.0, 3.1, 600, 0.5),
}


def efficientnet(name: str) -> Architecture:
    """EfficientNet-B0..B7 (``"b3"``, ``"efficientnet_b3"`` or ``"efficientnet-b3"``),
    scaled from the shipped B0 with the published width, depth, resolution and dropout.

    The head's 1280 channels go through ``round_filters`` as in the reference (which for
    every published width equals torchvision's ``4 x`` the scaled last stage).
    """
    key = str(name).strip().lower().removeprefix("efficientnet").lstrip("_-")
    if key not in EFFICIENTNET_MULTIPLIERS:
        known = ", ".join(EFFICIENTNET_MULTIPLIERS)
        raise NasError(f"unknown EfficientNet {name!r} (known: {known})", field="name")
    p = EFFICIENTNET_MULTIPLIERS[key]
    base = load_arch("efficientnet_b0")
    m = Multipliers(depth=p.depth, width=p.width, resolution=p.resolution / base.resolution)
    arch = scale(base, m, resolution=p.resolution)
    return arch.replace(head=replace(arch.head, dropout=p.dropout), name=f"efficientnet_{key}")


# -- the (alpha, beta, gamma) grid ---------------------------------------------------


def _axis(lo: float, hi: float, step: float) -> list[float]:
    n = math.floor((hi - lo) / step + 1e-9) + 1
    return [round(lo + i * step, 10) for i in range(n)]


def grid_by(
    cost_ratio: Callable[[Coefficients], float],
    *,
    tolerance: float = 0.1,
    step: float = 0.05,
    target: float = 2.0,
    lo: float = 1.0,
    hi: float = 2.0,
) -> list[Coefficients]:
    """Every ``(alpha, beta, gamma)`` on the grid ``lo, lo + step, ..., <= hi`` (each
    axis) whose ``cost_ratio`` is within ``tolerance * target`` of ``target`` (bounds
    included, with 1e-9 relative slack for float rounding).

    ``cost_ratio`` is what one step of ``phi`` multiplies the cost by: the FLOPs factor
    for ``grid``, or e.g. a latency predictor's phi=1 network over the base network.
    It is called once per grid point (21**3 = 9261 with the defaults). The result is
    sorted by ``(alpha, beta, gamma)``.
    """
    for value, label in ((step, "step"), (target, "target"), (lo, "lo"), (hi, "hi")):
        positive_number(value, label)
    if not is_number(tolerance):
        raise NasError(f"must be a number, got {tolerance!r}", field="tolerance")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise NasError(f"must be a finite number >= 0, got {tolerance}", field="tolerance")
    if lo < 1.0:
        raise NasError(f"must be >= 1 (alpha, beta, gamma >= 1), got {lo}", field="lo")
    if hi < lo:
        raise NasError(f"must be >= lo ({lo}), got {hi}", field="hi")
    axis = _axis(lo, hi, step)
    # A hair of slack keeps points exactly on the boundary, which float products can
    # miss (1.25 * 1.2**2 = 1.7999999999999998, not 1.8).
    bound = tolerance * target * (1 + 1e-9) + 1e-12
    points = []
    for a in axis:
        for b in axis:
            for g in axis:
                c = Coefficients(a, b, g)
                if abs(cost_ratio(c) - target) <= bound:
                    points.append(c)
    return points


def grid(
    tolerance: float = 0.1,
    step: float = 0.05,
    target: float = 2.0,
    lo: float = 1.0,
    hi: float = 2.0,
) -> list[Coefficients]:
    """EfficientNet's grid: ``|alpha * beta**2 * gamma**2 - target| <= tolerance * target``.

    With the defaults it holds EfficientNet's own (1.2, 1.1, 1.15) (factor 1.92).
    """
    return grid_by(
        lambda c: c.flops_factor, tolerance=tolerance, step=step, target=target, lo=lo, hi=hi
    )
