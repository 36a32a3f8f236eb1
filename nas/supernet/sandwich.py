"""One sandwich-rule training step with in-place distillation (BigNAS).

Per step: the largest subnet learns from the labels; the smallest and N random subnets
learn from the largest's (detached) predictions. Training the extremes every step
bounds the whole space from both sides (the sandwich rule), and soft targets from the
largest ease the small subnets' learning without a separately trained teacher. The
gradients of all subnets are summed into the shared weights; the optimizer steps once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.model.arch import Architecture
from nas.space.searchspace import sample_random
from nas.supernet.extremes import largest, smallest
from nas.supernet.supernet import Supernet

__all__ = ["Precision", "Sandwich", "SandwichLoss", "sandwich_step"]


@dataclass(frozen=True)
class Sandwich:
    """The recipe: the two extremes (computed once), how many random subnets, and the
    distillation temperature."""

    largest: Architecture
    smallest: Architecture
    random_subnets: int = 2
    temperature: float = 1.0

    @classmethod
    def of(
        cls, supernet: Supernet, *, random_subnets: int = 2, temperature: float = 1.0
    ) -> Sandwich:
        if random_subnets < 0 or temperature <= 0:
            raise ValueError("random_subnets must be >= 0 and temperature > 0")
        spec = supernet.spec
        return cls(largest(spec), smallest(spec), random_subnets, temperature)

    def students(self, supernet: Supernet, rng: np.random.Generator) -> list[Architecture]:
        """The smallest, then ``random_subnets`` uniform draws from the space."""
        return [
            self.smallest,
            *(sample_random(supernet.space, rng) for _ in range(self.random_subnets)),
        ]


@dataclass(frozen=True)
class SandwichLoss:
    """The step's losses before the update: the largest's cross-entropy and the mean
    distillation loss of the students."""

    largest: float
    distill: float


@dataclass(frozen=True)
class Precision:
    """Mixed precision for a step (CUDA only): autocast to ``dtype``; ``scaler`` (a
    GradScaler, float16 only) scales every subnet's loss and unscales once at the step."""

    dtype: torch.dtype
    scaler: torch.amp.GradScaler | None = None


Inputs = torch.Tensor | Callable[[Architecture], torch.Tensor]


def sandwich_step(
    supernet: Supernet,
    sandwich: Sandwich,
    x: Inputs,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    *,
    model: nn.Module | None = None,
    precision: Precision | None = None,
) -> SandwichLoss:
    """One update of ``supernet`` (in training mode) on the batch ``(x, y)``.

    ``x``: the inputs, or a function giving them for an architecture (each subnet at its
    own resolution). ``model``: the module that runs ``model(x, arch)`` when it is not
    the supernet itself (a DistributedDataParallel wrapper, whose backward passes
    all-reduce the gradients). ``rng`` draws the random subnets, so a seeded Generator
    repeats the same sequence of subnets; dropout and stochastic depth draw from
    torch's RNG (seed it too).
    """
    run = model if model is not None else supernet
    inputs = x if callable(x) else (lambda _arch: x)
    cast = (
        (lambda: torch.autocast(device_type="cuda", dtype=precision.dtype))
        if precision is not None
        else contextlib.nullcontext
    )
    scaler = precision.scaler if precision is not None else None

    def backward(loss: torch.Tensor) -> None:
        (scaler.scale(loss) if scaler is not None else loss).backward()

    optimizer.zero_grad(set_to_none=True)
    with cast():
        logits = run(inputs(sandwich.largest), sandwich.largest).float()
    loss = F.cross_entropy(logits, y)
    backward(loss)  # frees the largest's graph before the students build theirs
    t = sandwich.temperature
    teacher = F.softmax(logits.detach() / t, dim=1)
    students = sandwich.students(supernet, rng)
    distill = 0.0
    for arch in students:
        with cast():
            out = run(inputs(arch), arch).float()
        kd = F.kl_div(F.log_softmax(out / t, dim=1), teacher, reduction="batchmean") * (t * t)
        backward(kd)
        distill += float(kd.detach())
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return SandwichLoss(float(loss.detach()), distill / len(students))
