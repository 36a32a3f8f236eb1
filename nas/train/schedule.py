"""The learning-rate schedule: the rate of every optimiser step, from the config alone.

A pure function of (step, total steps, config), so it is set afresh every step and can
be checked without training anything.
"""

from __future__ import annotations

import math

from nas.core.errors import NasError
from nas.core.strict import is_int
from nas.train.config import TrainConfig

__all__ = ["STEP_MILESTONES", "lr_at"]

#: The step schedule multiplies the learning rate by 0.1 at these fractions of the
#: post-warmup steps.
STEP_MILESTONES = (0.5, 0.75)


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate of optimiser step ``step`` (0-based) out of ``total_steps``.

    Warmup covers the first ``round(warmup_epochs / epochs * total_steps)`` steps and rises
    linearly to ``cfg.lr`` (step k: lr * (k + 1) / warmup). After it, with progress
    t = (step - warmup) / (total_steps - warmup) in [0, 1): cosine gives
    lr * (1 + cos(pi * t)) / 2, step gives lr * 0.1 ** (milestones passed), constant lr.
    """
    if not is_int(total_steps) or total_steps < 1:
        raise NasError(f"must be a positive integer, got {total_steps!r}", field="total_steps")
    if not is_int(step) or not 0 <= step < total_steps:
        raise NasError(f"must be in [0, {total_steps}), got {step!r}", field="step")
    warmup = min(round(cfg.warmup_epochs / cfg.epochs * total_steps), total_steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total_steps - warmup)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "step":
        return cfg.lr * 0.1 ** sum(t >= m for m in STEP_MILESTONES)
    return cfg.lr
