"""Budgeted proxy training: the score of one search trial.

``evaluate(arch, data, cfg)`` builds the network, trains it for ``cfg.epochs`` on the
training split and scores it on the validation split after every epoch. It never raises
for a bad trial: a NaN/inf loss ends it as ``"diverged"``, any other error inside
training as ``"failed"``, so a search goes on. Bad input (config, device, arch/data
mismatch) still raises a NasError before any training starts.

Reproducible on the CPU: one ``cfg.seed`` fixes the initial weights, the shuffling, the
augmentation and dropout/drop-path, and the caller's global RNG is left untouched. (On
CUDA, cuDNN kernels may still differ run to run.) This module imports neither Ray nor
Optuna: the ``report`` callback is how they observe and prune a trial.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from nas.core.errors import NasError
from nas.core.strict import is_int, is_number
from nas.model.arch import Architecture
from nas.model.builder import build
from nas.model.threads import torch_threads

if TYPE_CHECKING:
    from nas.train.data import Dataset, Split

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "STATUSES",
    "EpochReport",
    "TrainConfig",
    "TrialResult",
    "accuracy",
    "evaluate",
    "lr_at",
]

_log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
STATUSES = ("complete", "stopped", "diverged", "failed")

#: The step schedule multiplies the learning rate by 0.1 at these fractions of the
#: post-warmup steps.
STEP_MILESTONES = (0.5, 0.75)
#: Batch size for validation and test passes (no gradients: larger is cheaper).
EVAL_BATCH = 512

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
    #: the CPU too: oneDNN convolutions train these small nets 1.0-2.2x faster in it.
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
    #: For "diverged" and "failed": one line saying why.
    reason: str = ""
    #: With ``test=True`` and status "complete" or "stopped"; else None.
    test_accuracy: float | None = None
    #: Path of the saved trained weights ("" when not asked for or not trained).
    weights: str = ""


#: ``report(epoch_report)`` returns True to stop training early.
Report = Callable[[EpochReport], "bool | None"]


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


# -- devices and RNG ---------------------------------------------------------------------


def _resolve_device(name: str) -> torch.device:
    """The torch device for ``cfg.device``; CUDA is only queried when it is asked for."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        raise NasError(f"{name!r} asked for, but there is no CUDA device here", field="device")
    device = torch.device(name)
    index = device.index if device.index is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise NasError(f"{name!r}: this machine has {count} CUDA device(s)", field="device")
    return torch.device("cuda", index)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (dropout, drop-path, init) and restore the caller's after.

    On the CPU only the CPU generator is forked and seeded: CUDA is never touched.
    """
    devices = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


# -- the trial ---------------------------------------------------------------------------


class _Diverged(Exception):
    """A non-finite loss: ends the trial as "diverged"."""


@dataclass
class _Trial:
    """One trial's state: model, data, device and precision settings, results so far."""

    arch: Architecture
    data: Dataset
    cfg: TrainConfig
    device: torch.device
    resolution: int
    generator: torch.Generator = field(init=False)
    model: nn.Module | None = None
    params: int = 0
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    history: list[EpochReport] = field(default_factory=list)
    stopped: bool = False
    test_accuracy: float | None = None
    model: nn.Module | None = None
    _cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Shuffling and augmentation: a private stream, independent of the global RNG.
        self.generator = torch.Generator().manual_seed(self.cfg.seed)

    def run(self, test: bool) -> Generator[EpochReport, bool | None, None]:
        """Build, then train epoch by epoch: yields each epoch's report and receives
        whether to stop. Everything that can fail in a trial happens in here."""
        cfg = self.cfg
        model = build(self.arch, seed=cfg.seed)
        self.model = model
        self.params = sum(p.numel() for p in model.parameters())
        model = model.to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda" and cfg.amp:
            bf16 = torch.cuda.is_bf16_supported()
            self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
            self.scaler = None if bf16 else torch.amp.GradScaler("cuda")
        self.model = model
        optimizer = _optimizer(model, cfg)
        n = int(self.data.train.y.shape[0])
        total = cfg.epochs * (n // min(cfg.batch_size, n))
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            train_loss = self.train_epoch(epoch, optimizer, total)
            val_accuracy, val_loss = self.score(self.data.val)
            if math.isinf(val_loss) or (math.isnan(val_loss) and not math.isnan(val_accuracy)):
                raise _Diverged(f"non-finite validation loss ({val_loss}) after epoch {epoch}")
            entry = EpochReport(
                epoch=epoch,
                train_loss=train_loss,
                val_accuracy=val_accuracy,
                val_loss=val_loss,
                seconds=time.perf_counter() - t0,
            )
            self.history.append(entry)
            stop = yield entry
            if stop and epoch < cfg.epochs:
                self.stopped = True
                break
        if test:
            self.test_accuracy, _ = self.score(self.data.test)

    def _tensors(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's uint8 images and labels on the device (copied there once, still uint8)."""
        key = id(split)
        if key not in self._cache:
            if self.device.type == "cpu":
                self._cache[key] = (split.x, split.y)
            else:
                self._cache[key] = (split.x.to(self.device), split.y.to(self.device))
        return self._cache[key]

    def _inputs(self, x_uint8: torch.Tensor, *, augment: bool = False) -> torch.Tensor:
        """uint8 batch (on the device) -> normalised float at the trial's resolution."""
        x = self.data.normalise(x_uint8, self.resolution)
        if augment:
            x = self._augment(x)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Random translation (zero pad + crop) and, for RGB, horizontal flips: batched."""
        n, _, h, w = x.shape
        g = self.generator
        pad = int(self.cfg.augment * self.resolution / 8)
        if pad > 0:
            padded = F.pad(x, (pad, pad, pad, pad))
            # Offsets come from the trial's CPU generator (the same on every device).
            dy = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
            dx = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
            batch = torch.arange(n, device=x.device)[:, None, None]
            # Advanced indices around a slice put their dims first: (n, h, w, c).
            x = padded[batch, :, rows, cols].permute(0, 3, 1, 2)
        if x.shape[1] == 3:
            flip = (torch.rand(n, generator=g) < 0.5 * self.cfg.augment).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.contiguous()

    def train_epoch(self, epoch: int, optimizer: torch.optim.Optimizer, total: int) -> float:
        """One pass over a fresh shuffle of the training split; returns the mean loss."""
        assert self.model is not None
        xs, ys = self._tensors(self.data.train)
        n = int(ys.shape[0])
        batch = min(self.cfg.batch_size, n)
        steps = n // batch  # the ragged tail is dropped: a batch of 1 breaks BatchNorm
        order = torch.randperm(n, generator=self.generator).to(self.device)
        self.model.train()
        loss_sum = 0.0
        for k in range(steps):
            step = (epoch - 1) * steps + k
            idx = order[k * batch : (k + 1) * batch]
            x = self._inputs(xs[idx], augment=self.cfg.augment > 0)
            y = ys[idx]
            lr = lr_at(step, total, self.cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with self._autocast():
                logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
            value = loss.item()  # one sync per step: divergence stops the trial at once
            if not math.isfinite(value):
                raise _Diverged(
                    f"non-finite training loss ({value}) at epoch {epoch}, "
                    f"step {k + 1}/{steps} (lr {lr:.3g})"
                )
            optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(optimizer)
                self.scaler.update()
            else:
                loss.backward()
                optimizer.step()
            loss_sum += value
        return loss_sum / steps

    def score(self, split: Split) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) on ``split``: eval mode, no autograd, batched.

        NaN for an empty split.
        """
        assert self.model is not None
        self.model.eval()
        xs, ys = self._tensors(split)
        n = int(ys.shape[0])
        if n == 0:
            return math.nan, math.nan
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        with torch.inference_mode():
            for start in range(0, n, EVAL_BATCH):
                x = self._inputs(xs[start : start + EVAL_BATCH])
                y = ys[start : start + EVAL_BATCH]
                with self._autocast():
                    logits = self.model(x)
                logits = logits.float()
                loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(dim=1) == y).sum()
        return int(correct.item()) / n, float(loss_sum.item()) / n


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only (BatchNorm and biases are left alone)."""
    groups = [
        {"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": cfg.weight_decay},
        {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    line = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return line if len(line) <= 500 else line[:497] + "..."


def _check_fit(arch: Architecture, data: Dataset) -> None:
    for name in ("in_channels", "num_classes"):
        have, want = getattr(arch, name), getattr(data, name)
        if have != want:
            raise NasError(
                f"the architecture has {have}, dataset {data.name!r} has {want}", field=name
            )


def evaluate(
    arch: Architecture,
    data: Dataset,
    cfg: TrainConfig,
    *,
    report: Report | None = None,
    test: bool = False,
    resolution: int | None = None,
    weights_path: str | Path | None = None,
) -> TrialResult:
    """Train ``arch`` on ``data.train`` for ``cfg.epochs`` and score it on ``data.val``.

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
    if not isinstance(cfg, TrainConfig):
        raise NasError(f"expected a TrainConfig, got {type(cfg).__name__}", field="cfg")
    _check_fit(arch, data)
    res = arch.resolution if resolution is None else resolution
    if not is_int(res) or res < 1:
        raise NasError(f"must be a positive integer, got {res!r}", field="resolution")
    if int(data.train.y.shape[0]) == 0:
        raise NasError(f"dataset {data.name!r} has an empty training split", field="data")
    device = _resolve_device(cfg.device)
    start = time.perf_counter()
    trial = _Trial(arch, data, cfg, device, res)
    status, reason = "complete", ""

    with (
        _seeded(cfg.seed, device),
        torch_threads(None if device.type == "cuda" else cfg.max_threads),
    ):
        steps = trial.run(test)
        stop: bool | None = None
        while True:
            try:
                entry = steps.send(stop)
            except StopIteration:
                break
            except _Diverged as err:
                status, reason = "diverged", str(err)
                break
            except NasError:  # bad input (e.g. from the dataset) is the caller's to fix
                raise
            except Exception as err:  # a bad trial must not end the search
                status, reason = "failed", _one_line(err)
                _log.debug("trial %s failed: %s", arch.short_id, reason, exc_info=True)
                break
            stop = bool(report(entry)) if report is not None else False
        steps.close()
    if trial.stopped and status == "complete":
        status = "stopped"

    saved = ""
    if weights_path is not None and status in ("complete", "stopped") and trial.model is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in trial.model.state_dict().items()}
        path = Path(weights_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        torch.save(state, tmp)
        tmp.replace(path)
        saved = str(path)

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
