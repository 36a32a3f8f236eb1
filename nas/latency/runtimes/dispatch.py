"""Turn a module into a zero-argument callable that runs one inference on a target,
through the target's runtime."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from nas.core.errors import NasError
from nas.latency.runtimes.base import Runner, TargetSpec
from nas.latency.runtimes.registry import get_runtime
from nas.model.arch import Architecture
from nas.model.builder import build

__all__ = ["check_available", "prepare", "prepare_arch"]


def check_available(target: TargetSpec) -> None:
    """Raise a one-line NasError when the target's runtime or device is not here."""
    if target.device == "cuda" and not torch.cuda.is_available():
        raise NasError(f"target {target.name}: no CUDA device on this machine", field="target")
    get_runtime(target.runtime).check_available(target)


def prepare(
    module: nn.Module, input_shape: tuple[int, ...], target: TargetSpec, *, copies: int = 1
) -> Runner:
    """A runner for ``module`` on ``input_shape`` (batch included) and ``target``.

    ``copies`` > 1 prepares that many copies of the module, each with its own weights,
    and the runner's calls go round them: a copy's weights have left the nearest caches by
    the time it runs again, as a layer's have inside a whole network (see
    ``nas.latency.cold``).
    """
    check_available(target)
    if copies < 1:
        raise NasError(f"must be a positive integer, got {copies}", field="copies")
    runners = get_runtime(target.runtime).prepare(module.eval(), input_shape, target, copies)
    return _round_robin(runners)


def _round_robin(runners: list[Runner]) -> Runner:
    """One runner whose calls go round ``runners`` (all prepared alike)."""
    if len(runners) == 1:
        return runners[0]
    turn = itertools.cycle([r.call for r in runners]).__next__
    first = runners[0]
    return Runner(
        call=lambda: turn()(),
        cuda=first.cuda,
        session=first.session,
        keep=[r.keep for r in runners],
    )


def prepare_arch(arch: Architecture, target: TargetSpec) -> Runner:
    """``prepare`` for the network of ``arch`` (seed 0), on one batch at its resolution."""
    shape = (target.batch, arch.in_channels, arch.resolution, arch.resolution)
    return prepare(build(arch), shape, target)
