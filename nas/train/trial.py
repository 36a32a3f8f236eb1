"""One trial's training loop: build the network, train epoch by epoch, score a split.

``Trial.run`` is a generator so that ``nas.train.loop.evaluate`` owns the policy (what
ends a trial, what is reported, what is saved) while this module owns the mechanics
(batches, precision, augmentation, the optimiser and its schedule).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from nas.model.arch import Architecture
from nas.model.builder import build
from nas.train.config import TrainConfig
from nas.train.result import EpochReport
from nas.train.schedule import lr_at

if TYPE_CHECKING:
    from nas.train.data import Dataset, Split

__all__ = ["EVAL_BATCH", "Diverged", "Trial", "optimizer_for"]

#: Batch size for validation and test passes (no gradients: larger is cheaper).
EVAL_BATCH = 512


class Diverged(Exception):
    """A non-finite loss: ends the trial as "diverged"."""


@dataclass
class Trial:
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
    _cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    #: Weights to start from (a state dict of ``build(arch)``) instead of a fresh init.
    initial: Mapping[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        # Shuffling and augmentation: a private stream, independent of the global RNG.
        self.generator = torch.Generator().manual_seed(self.cfg.seed)

    def run(self, test: bool) -> Generator[EpochReport, bool | None, None]:
        """Build, then train epoch by epoch: yields each epoch's report and receives
        whether to stop. Everything that can fail in a trial happens in here."""
        cfg = self.cfg
        model = build(self.arch, seed=cfg.seed)
        if self.initial is not None:
            model.load_state_dict(self.initial, strict=True)
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
        optimizer = optimizer_for(model, cfg)
        n = int(self.data.train.y.shape[0])
        total = cfg.epochs * (n // min(cfg.batch_size, n))
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            train_loss = self.train_epoch(epoch, optimizer, total)
            val_accuracy, val_loss = self.score(self.data.val)
            if math.isinf(val_loss) or (math.isnan(val_loss) and not math.isnan(val_accuracy)):
                raise Diverged(f"non-finite validation loss ({val_loss}) after epoch {epoch}")
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
                raise Diverged(
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


def optimizer_for(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only (BatchNorm and biases are left alone)."""
    groups = [
        {"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": cfg.weight_decay},
        {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)
