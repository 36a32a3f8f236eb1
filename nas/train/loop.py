"""Budgeted proxy training: the score of one search trial.

``evaluate(arch, data, cfg)`` builds the network, trains it for ``cfg.epochs`` on the
training split and scores it on the validation split after every epoch. It never raises
for a bad trial: a NaN/inf loss ends it as ``"diverged"``, any other error inside
training as ``"failed"``, so a search goes on. Bad input (config, device, arch/data
mismatch) still raises a NasError before any training starts.

Reproducible on the CPU: one ``cfg.seed`` fixes the initial weights, the shuffling, the
augmentation and dropout/drop-path, and the caller's global RNG is left untouched. (On
CUDA, cuDNN kernels may still differ run to run.) This module imports neither Ray nor
Optuna: the ``report`` callback is how they observe and prune a trial. The pieces live
beside it: ``config`` (torch-free settings), ``schedule`` (learning rates), ``result``
(what a trial reports), ``device`` (device and RNG scope) and ``trial`` (the loop itself).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.core.atomic import write_with
from nas.core.errors import NasError, one_line
from nas.core.strict import is_int
from nas.model.arch import Architecture
from nas.model.threads import torch_threads
from nas.train.config import TrainConfig
from nas.train.device import resolve_device, seeded
from nas.train.result import Report, TrialResult
from nas.train.trial import EVAL_BATCH, Diverged, Trial

if TYPE_CHECKING:
    from nas.train.data import Dataset, Split

__all__ = ["accuracy", "evaluate"]

_log = logging.getLogger(__name__)


def _check_fit(arch: Architecture, data: Dataset) -> None:
    for name in ("in_channels", "num_classes"):
        have, want = getattr(arch, name), getattr(data, name)
        if have != want:
            raise NasError(
                f"the architecture has {have}, dataset {data.name!r} has {want}", field=name
            )


def _check_input(arch: Architecture, data: Dataset, cfg: TrainConfig, res: int) -> None:
    """Bad input raises a NasError here, before any training starts."""
    if not isinstance(cfg, TrainConfig):
        raise NasError(f"expected a TrainConfig, got {type(cfg).__name__}", field="cfg")
    _check_fit(arch, data)
    if not is_int(res) or res < 1:
        raise NasError(f"must be a positive integer, got {res!r}", field="resolution")
    if int(data.train.y.shape[0]) == 0:
        raise NasError(f"dataset {data.name!r} has an empty training split", field="data")


def _drive(trial: Trial, test: bool, report: Report | None) -> tuple[str, str]:
    """Run the trial's epochs, passing each report on; returns (status, reason).

    Only the training is guarded: a bad trial ends as "diverged" or "failed" so the
    search goes on, while a NasError (bad input) and whatever ``report`` raises propagate.
    """
    status, reason = "complete", ""
    steps = trial.run(test)
    stop: bool | None = None
    while True:
        try:
            entry = steps.send(stop)
        except StopIteration:
            break
        except Diverged as err:
            status, reason = "diverged", str(err)
            break
        except NasError:  # bad input (e.g. from the dataset) is the caller's to fix
            raise
        except Exception as err:  # a bad trial must not end the search
            status, reason = "failed", one_line(err, line="all", named=True)
            _log.debug("trial %s failed: %s", trial.arch.short_id, reason, exc_info=True)
            break
        stop = bool(report(entry)) if report is not None else False
    steps.close()
    if trial.stopped and status == "complete":
        status = "stopped"
    return status, reason


def _save_weights(model: nn.Module, weights_path: str | Path) -> str:
    """Write the trained state_dict (CPU, contiguous) atomically; returns its path."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(weights_path)
    write_with(path, lambda f: torch.save(state, f))
    return str(path)


def evaluate(
    arch: Architecture,
    data: Dataset,
    cfg: TrainConfig,
    *,
    report: Report | None = None,
    test: bool = False,
    resolution: int | None = None,
    weights_path: str | Path | None = None,
    initial: Mapping[str, torch.Tensor] | None = None,
) -> TrialResult:
    """Train ``arch`` on ``data.train`` for ``cfg.epochs`` and score it on ``data.val``.

    ``initial``: a state dict of ``build(arch)`` to start from (weights inherited from a
    supernet) instead of the seeded initialisation.

    ``weights_path``: where to save the trained state_dict (CPU, contiguous tensors,
    loadable with ``nas.model.builder.load_weights``) when training completed or was stopped.

    ``report(epoch_report)`` is called after every epoch; returning True stops training
    ("stopped", unless that was the last epoch). Exceptions it raises propagate (an
    ``optuna.TrialPruned`` for instance): only the training itself is guarded. ``test=True``
    also scores ``data.test`` once at the end. ``resolution`` trains and scores at that
    input size instead of ``arch.resolution`` (a cheaper proxy; the network is
    resolution-agnostic).

    Raises NasError only for bad input, before training: a bad config, a mismatch between
    the architecture and the data (``in_channels``/``num_classes``), an empty training
    split or an unavailable device.
    """
    res = arch.resolution if resolution is None else resolution
    _check_input(arch, data, cfg, res)
    device = resolve_device(cfg.device)
    start = time.perf_counter()
    trial = Trial(arch, data, cfg, device, res, initial=initial)
    with (
        seeded(cfg.seed, device),
        torch_threads(None if device.type == "cuda" else cfg.max_threads),
    ):
        status, reason = _drive(trial, test, report)

    saved = ""
    if weights_path is not None and status in ("complete", "stopped") and trial.model is not None:
        saved = _save_weights(trial.model, weights_path)

    history = tuple(trial.history)
    last = history[-1] if history else None
    return TrialResult(
        status=status,
        val_accuracy=last.val_accuracy if last else math.nan,
        val_loss=last.val_loss if last else math.nan,
        history=history,
        epochs=len(history),
        seconds=time.perf_counter() - start,
        params=trial.params,
        reason=reason,
        test_accuracy=trial.test_accuracy if status in ("complete", "stopped") else None,
        weights=saved,
    )


def accuracy(model: nn.Module, data: Dataset, split: Split, resolution: int) -> float:
    """Top-1 accuracy of a trained model (e.g. loaded from saved weights) on ``split``,
    in eval mode on the model's device, batched."""
    device = next(model.parameters()).device
    model.eval()
    n = int(split.y.shape[0])
    if n == 0:
        return math.nan
    correct = 0
    with torch.inference_mode():
        for start in range(0, n, EVAL_BATCH):
            x = data.normalise(split.x[start : start + EVAL_BATCH].to(device), resolution)
            y = split.y[start : start + EVAL_BATCH].to(device)
            correct += int((model(x).argmax(dim=1) == y).sum().item())
    return correct / n
