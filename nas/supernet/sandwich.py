"""One sandwich-rule training step with in-place distillation (BigNAS).

Per step: the largest subnet learns from the labels; the smallest and N random subnets
learn from the largest's (detached) predictions. Training the extremes every step
bounds the whole space from both sides (the sandwich rule), and soft targets from the
largest ease the small subnets' learning without a separately trained teacher. The
gradients of all subnets are summed into the shared weights; the optimizer steps once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nas.model.arch import Architecture
from nas.space.searchspace import sample_random
from nas.supernet.extremes import largest, smallest
from nas.supernet.supernet import Supernet

__all__ = ["Sandwich", "SandwichLoss", "sandwich_step"]


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


def sandwich_step(
    supernet: Supernet,
    sandwich: Sandwich,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> SandwichLoss:
    """One update of ``supernet`` (in training mode) on the batch ``(x, y)``.

    ``rng`` draws the random subnets, so a seeded Generator repeats the same sequence
    of subnets; dropout and stochastic depth draw from torch's RNG (seed it too).
    """
    optimizer.zero_grad(set_to_none=True)
    logits = supernet(x, sandwich.largest)
    loss = F.cross_entropy(logits, y)
    loss.backward()  # frees the largest's graph before the students build theirs
    t = sandwich.temperature
    teacher = F.softmax(logits.detach() / t, dim=1)
    students = sandwich.students(supernet, rng)
    distill = 0.0
    for arch in students:
        out = F.log_softmax(supernet(x, arch) / t, dim=1)
        kd = F.kl_div(out, teacher, reduction="batchmean") * (t * t)
        kd.backward()
        distill += float(kd.detach())
    optimizer.step()
    return SandwichLoss(float(loss.detach()), distill / len(students))
