"""What training a network needs in memory, from its description: the figure a trial
checks against what it was given before it trains (nas.train.loop), so a network that
cannot fit is refused with a reason instead of dying mid-training.

    total = weights + gradients + optimiser state + activations + data on the device

- weights and gradients: 4 bytes per parameter each (float32; AMP keeps float32 weights).
- optimiser state: one float32 buffer per parameter for SGD with momentum, two for AdamW.
- activations: the larger of a training step (batch x what autograd keeps per sample,
  ``Cost.training_activation_elements``) and an evaluation pass (``eval_batch`` x the
  inference peak), float32 (AMP halves most of it; the float32 figure is kept).
- data: the splits a trial copies onto a GPU (uint8); 0 on the CPU, where they stay put.

Not counted: the process itself (interpreter, torch, Ray: see benchmarks/trial_memory.py),
the kernels' temporaries (im2col and oneDNN buffers, a BatchNorm's output beside its
input at inference) and allocator slack. Activations are within 10% of what torch keeps
for ReLU networks (tests/model/test_memory.py); SiLU and hardswish keep one more copy per
activated convolution, which this leaves out (a third under on the ``mobile`` space).
So the figure is a floor: the resident peak of a CPU training is above it (by how much:
benchmarks/README.md), and a trial that refuses a network because of it is sure the
network cannot fit; one that passes may still run out, and then fails with its reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nas.model.arch import Architecture
from nas.model.cost import cost

__all__ = ["OPTIMIZER_STATES", "TrainingMemory", "training_memory"]

#: float32 buffers per parameter each optimiser keeps.
OPTIMIZER_STATES = {"sgd": 1, "adamw": 2}

_MIB = 1024 * 1024


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one training needs, by part."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    data: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.data

    def describe(self) -> str:
        """One line: the total and its two largest parts, in MiB."""
        state = self.weights + self.gradients + self.optimizer
        parts = {
            "activations": self.activations,
            "weights and their state": state,
            "data": self.data,
        }
        big = sorted(parts.items(), key=lambda kv: -kv[1])[:2]
        inside = ", ".join(f"{name} {size / _MIB:.1f}" for name, size in big if size)
        return f"{self.total / _MIB:.1f} MiB ({inside})"


def training_memory(
    arch: Architecture,
    *,
    batch: int,
    optimizer: str = "sgd",
    eval_batch: int = 0,
    resolution: int | None = None,
    data_bytes: int = 0,
) -> TrainingMemory:
    """What training ``arch`` at ``batch`` (and scoring at ``eval_batch``) needs; at
    ``resolution`` when given (a trial may train at another input size)."""
    if resolution is not None and resolution != arch.resolution:
        arch = dataclasses.replace(arch, resolution=resolution)
    c = cost(arch)
    weights = 4 * c.params
    train = c.training_activation_bytes(batch)
    evaluation = c.peak_activation_bytes() * eval_batch
    return TrainingMemory(
        weights=weights,
        gradients=weights,
        optimizer=OPTIMIZER_STATES[optimizer] * weights,
        activations=max(train, evaluation),
        data=data_bytes,
    )
