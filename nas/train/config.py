"""How one trial trains: ``TrainConfig`` and the choices it is validated against.

Torch-free on purpose: a study file embeds a ``TrainConfig``, and reading one must not
pay for importing torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nas.core.errors import NasError
from nas.core.strict import is_int, is_number

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainConfig"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")

_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """How one trial trains. Every field is checked on construction (NasError naming it)."""

    epochs: int = 10
    batch_size: int = 64
    #: "sgd" (momentum 0.9, Nesterov) or "adamw".
    optimizer: str = "sgd"
    lr: float = 0.05
    #: Applied to conv/linear weights only, not to BatchNorm parameters or biases.
    weight_decay: float = 5e-4
    #: "cosine", "step" (x0.1 at 50% and 75%) or "constant"; set every step (``lr_at``).
    schedule: str = "cosine"
    #: Linear warmup from lr/warmup_steps to lr over this many epochs (may be fractional).
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    #: Strength 0..1: random translation by up to augment * resolution / 8 pixels (pad and
    #: random crop) and, for 3-channel data, random horizontal flips. 0 turns it off.
    augment: float = 0.0
    seed: int = 0
    #: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else the CPU).
    device: str = "cpu"
    #: Mixed precision, on CUDA only: bfloat16 where supported, else float16 + GradScaler.
    amp: bool = True
    #: channels_last memory format for the model and its inputs. On CUDA as usual, and on
    #: the CPU too, where oneDNN convolutions train these small nets faster in it
    #: (benchmarks/README.md, "Figures behind choices in the code").
    channels_last: bool = True
    #: torch intra-op threads while training on the CPU (None: leave as is).
    max_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay", "warmup_epochs", "label_smoothing", "augment"):
            value = getattr(self, name)
            if not is_number(value):
                raise NasError(f"expected a finite number, got {value!r}", field=name)
            object.__setattr__(self, name, float(value))
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise NasError(f"must be a positive integer, got {value!r}", field=name)
        if self.optimizer not in OPTIMIZERS:
            raise NasError(
                f"unknown optimizer {self.optimizer!r} (known: {', '.join(OPTIMIZERS)})",
                field="optimizer",
            )
        if self.lr <= 0:
            raise NasError(f"must be > 0, got {self.lr}", field="lr")
        if self.weight_decay < 0:
            raise NasError(f"must be >= 0, got {self.weight_decay}", field="weight_decay")
        if self.schedule not in SCHEDULES:
            raise NasError(
                f"unknown schedule {self.schedule!r} (known: {', '.join(SCHEDULES)})",
                field="schedule",
            )
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise NasError(
                f"must be in [0, epochs={self.epochs}], got {self.warmup_epochs}",
                field="warmup_epochs",
            )
        if not 0 <= self.label_smoothing < 1:
            raise NasError(
                f"must be in [0, 1), got {self.label_smoothing}", field="label_smoothing"
            )
        if not 0 <= self.augment <= 1:
            raise NasError(f"must be in [0, 1], got {self.augment}", field="augment")
        if not is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise NasError(f"must be an integer in [0, 2**63), got {self.seed!r}", field="seed")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise NasError(
                f"expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}", field="device"
            )
        for name in ("amp", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise NasError(f"expected true or false, got {getattr(self, name)!r}", field=name)
        if self.max_threads is not None and (not is_int(self.max_threads) or self.max_threads < 1):
            raise NasError(
                f"must be a positive integer or None, got {self.max_threads!r}", field="max_threads"
            )
