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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.core.atomic import write_with
from nas.core.errors import NasError, one_line
from nas.core.strict import is_int
from nas.model.arch import Architecture
from nas.model.memory import training_memory
from nas.model.threads import torch_threads
from nas.train.config import TrainConfig
from nas.train.device import memory_left, place, release_memory, seeded
from nas.train.result import Report, TrialResult
from nas.train.trial import EVAL_BATCH, Diverged, Trial

if TYPE_CHECKING:
    from nas.train.data import Dataset, Split

__all__ = ["accuracy", "evaluate", "is_out_of_memory"]

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


#: What allocators say when memory runs out: CUDA's and other backends' "out of memory",
#: the CPU allocator's "can't allocate memory" / "not enough memory" (a RuntimeError).
_OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says memory ran out: ``MemoryError`` (Python's), torch's
    ``OutOfMemoryError``, or a RuntimeError with an allocator's words for it."""
    if isinstance(err, MemoryError | torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(w in text for w in _OOM_WORDS)


def _release(trial: Trial) -> None:
    """Drop what a trial holds, so the next trial in this process (a reused Ray worker)
    starts with its memory back: after it ran out of memory, and after every trial."""
    trial.model = None
    trial._cache.clear()
    release_memory(trial.device)


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
            if is_out_of_memory(err):
                reason = f"out of memory on {trial.device}: {reason}"
                _release(trial)
            _log.debug("trial %s failed: %s", trial.arch.short_id, reason, exc_info=True)
            break
        stop = bool(report(entry)) if report is not None else False
    steps.close()
    if trial.stopped and status == "complete":
        status = "stopped"
    return status, reason


def _wont_fit(
    arch: Architecture, data: Dataset, cfg: TrainConfig, device: torch.device, res: int,
    *, limit: int, gpu_share: float,
) -> str:  # fmt: skip
    """Why the training cannot fit the memory the trial has ("" when it can, or when
    nothing bounds it): the cost model's figure against ``memory_left``."""
    left = memory_left(device, limit=limit, gpu_share=gpu_share)
    if left is None:
        return ""
    on_device = 0
    if device.type == "cuda":  # Trial copies the splits it reads onto the GPU (uint8)
        on_device = sum(s.x.numel() + 8 * s.y.numel() for s in (data.train, data.val))
    need = training_memory(
        arch, batch=min(cfg.batch_size, len(data.train)), optimizer=cfg.optimizer,
        eval_batch=EVAL_BATCH, resolution=res, data_bytes=on_device,
    )  # fmt: skip
    if need.total <= left:
        return ""
    return (
        f"needs about {need.describe()} to train, {max(left, 0) / 2**20:.1f} MiB left on {device}"
    )


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
    gpu_ids: Sequence[str | int] = (),
    memory_limit: int = 0,
    gpu_share: float = 1.0,
) -> TrialResult:
    """Train ``arch`` on ``data.train`` for ``cfg.epochs`` and score it on ``data.val``.

    ``weights_path``: where to save the trained state_dict (CPU, contiguous tensors,
    loadable with ``nas.model.builder.load_weights``) when training completed or was stopped.

    ``gpu_ids``: the physical GPUs a scheduler assigned (``ray.get_gpu_ids()``); the
    trial then trains on the first of its visible set (``nas.train.device.place``).
    ``memory_limit`` (bytes, 0: none) is what the trial may hold on the CPU, ``gpu_share``
    the fraction of its GPU it was given: a network whose training the cost model says
    cannot fit what is left (``nas.model.memory``) is "rejected" before it trains.

    ``report(epoch_report)`` is called after every epoch; returning True stops training
    ("stopped", unless that was the last epoch). Exceptions it raises propagate (an
    ``optuna.TrialPruned`` for instance): only the training itself is guarded. ``test=True``
    also scores ``data.test`` once at the end. ``resolution`` trains and scores at that
    input size instead of ``arch.resolution`` (a cheaper proxy; the network is
    resolution-agnostic).

    Raises NasError only for bad input, before training: a bad config, a mismatch between
    the architecture and the data (``in_channels``/``num_classes``), an empty training
    split or an unavailable device. Running out of memory during training is a "failed"
    trial whose reason starts with "out of memory".
    """
    res = arch.resolution if resolution is None else resolution
    _check_input(arch, data, cfg, res)
    placement = place(cfg.device, gpu_ids)
    device = placement.device
    start = time.perf_counter()
    refused = _wont_fit(arch, data, cfg, device, res, limit=memory_limit, gpu_share=gpu_share)
    if refused:
        return TrialResult(
            status="rejected", val_accuracy=math.nan, val_loss=math.nan, history=(), epochs=0,
            seconds=time.perf_counter() - start, params=0, reason=refused,
            device=placement.label, gpu_ids=placement.gpu_ids,
        )  # fmt: skip
    trial = Trial(arch, data, cfg, device, res)
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
    params = trial.params
    _release(trial)
    return TrialResult(
        status=status,
        val_accuracy=last.val_accuracy if last else math.nan,
        val_loss=last.val_loss if last else math.nan,
        history=history,
        epochs=len(history),
        seconds=time.perf_counter() - start,
        params=params,
        reason=reason,
        test_accuracy=trial.test_accuracy if status in ("complete", "stopped") else None,
        weights=saved,
        device=placement.label,
        gpu_ids=placement.gpu_ids,
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
