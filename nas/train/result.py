"""What a trial reports: one ``EpochReport`` per epoch and a ``TrialResult`` at the end.

Torch-free, so the search and the report can read results without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["STATUSES", "EpochReport", "Report", "TrialResult"]

STATUSES = ("complete", "stopped", "diverged", "failed", "rejected")


@dataclass(frozen=True)
class EpochReport:
    """One epoch: mean training loss, validation accuracy and loss, wall seconds."""

    epoch: int  # 1-based
    train_loss: float
    val_accuracy: float
    #: Plain cross-entropy (no label smoothing), so it compares across configs.
    val_loss: float
    seconds: float


@dataclass(frozen=True)
class TrialResult:
    """The outcome of ``evaluate``. Check ``status`` before trusting the scores.

    ``val_accuracy``/``val_loss`` are those of the LAST completed epoch (not the best:
    the best of several noisy evaluations is biased upwards), NaN when no epoch completed.
    """

    status: str  # one of STATUSES
    val_accuracy: float
    val_loss: float
    history: tuple[EpochReport, ...]
    #: Epochs completed (``len(history)``); a diverged or failed epoch is not counted.
    epochs: int
    seconds: float
    params: int
    #: For "diverged", "failed" and "rejected" (a network that cannot fit the memory
    #: the trial has, refused before training): one line saying why.
    reason: str = ""
    #: With ``test=True`` and status "complete" or "stopped"; else None.
    test_accuracy: float | None = None
    #: Path of the saved trained weights ("" when not asked for or not trained).
    weights: str = ""
    #: The torch device it trained on ("cuda:0", "cpu").
    device: str = ""
    #: Physical GPU ids a scheduler assigned to the trial (nas.train.device.place).
    gpu_ids: tuple[str, ...] = ()


#: ``report(epoch_report)`` returns True to stop training early.
Report = Callable[[EpochReport], "bool | None"]
