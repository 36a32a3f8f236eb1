"""Supernet training by the sandwich rule, seeded and resumable.

Every step runs ``sandwich_step`` (largest from the labels, smallest and N random
subnets distilled from it) on one batch, each subnet at its own resolution. The run is
checkpointed every ``checkpoint_every`` steps and after every epoch with the weights,
the optimizer, the RNG states (the numpy Generator drawing subnets, torch's for
dropout) and the position, so a killed run resumes to the weights an uninterrupted
one reaches (exactly on the CPU). Shuffling needs no saved state: epoch ``e``'s order
comes from its own generator seeded by (seed, e).

``Loop`` holds the mechanics shared with data-parallel training
(nas.search.executors.ray_train): a worker of ``world`` takes every ``world``-th sample
of each global batch and draws the same subnets as the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace
from nas.supernet.recipe import SupernetRecipe
from nas.supernet.sandwich import Precision, Sandwich, sandwich_step
from nas.supernet.store import (
    data_fingerprint,
    read_checkpoint,
    save_checkpoint,
    space_fingerprint,
)
from nas.supernet.supernet import Supernet
from nas.train.dataset import Dataset
from nas.train.device import resolve_device, seeded
from nas.train.schedule import lr_at

__all__ = ["Loop", "Progress", "check_data", "train_supernet"]

#: ``progress(steps_done, total_steps)``, called after every step.
Progress = Callable[[int, int], None]


def check_data(space: SearchSpace, data: Dataset, recipe: SupernetRecipe) -> None:
    """A NasError naming the field when ``data`` cannot train ``space``'s supernet."""
    spec_top = dict(space.top)
    for name in ("in_channels", "num_classes"):
        have, want = spec_top[name][0], getattr(data, name)
        if len(spec_top[name]) != 1 or have != want:
            raise NasError(
                f"the space has {list(spec_top[name])}, dataset {data.name!r} has {want}",
                field=name,
                source=space.source,
            )
    if len(data.train) < recipe.batch_size:
        raise NasError(
            f"the training split has {len(data.train)} samples, fewer than one batch "
            f"({recipe.batch_size})",
            field="batch_size",
        )


def _precision(device: torch.device) -> Precision | None:
    """bfloat16 autocast where the GPU has it, else float16 with a GradScaler; none on
    the CPU (CPU autocast is slower than float32 for these small convs)."""
    if device.type != "cuda":
        return None
    if torch.cuda.is_bf16_supported():
        return Precision(torch.bfloat16)
    return Precision(torch.float16, torch.amp.GradScaler("cuda"))


@dataclass
class Loop:
    """One run's mechanics: optimizer, schedule, batches, the RNG states to save."""

    supernet: Supernet
    data: Dataset
    recipe: SupernetRecipe
    device: torch.device
    #: The module whose ``forward(x, arch)`` trains (a DDP wrapper), else the supernet.
    model: nn.Module | None = None
    rank: int = 0
    world: int = 1
    sandwich: Sandwich = field(init=False)
    optimizer: torch.optim.Optimizer = field(init=False)
    precision: Precision | None = field(init=False)
    rng: np.random.Generator = field(init=False)
    epoch: int = 0  # the epoch under way (0-based)
    step: int = 0  # steps done within it

    def __post_init__(self) -> None:
        r = self.recipe
        self.sandwich = Sandwich.of(
            self.supernet, random_subnets=r.random_subnets, temperature=r.temperature
        )
        params = list(self.supernet.parameters())
        # As stand-alone training (nas.train.trial.optimizer_for): no decay on BN and biases.
        groups = [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": r.weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.SGD(
            groups, lr=r.lr, momentum=r.momentum, nesterov=r.momentum > 0
        )
        self.precision = _precision(self.device)
        self.rng = np.random.default_rng(r.seed)

    @property
    def steps_per_epoch(self) -> int:
        # The ragged tail is dropped: a batch of 1 breaks BatchNorm.
        return len(self.data.train) // self.recipe.batch_size

    @property
    def total(self) -> int:
        return self.recipe.epochs * self.steps_per_epoch

    @property
    def done(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step

    def order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.data.train), generator=g)

    def state(self) -> dict[str, Any]:
        """What resuming needs besides the weights."""
        out: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "numpy": self.rng.bit_generator.state,
            "torch": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            out["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.precision is not None and self.precision.scaler is not None:
            out["scaler"] = self.precision.scaler.state_dict()
        return out

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["numpy"]
        torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)
        if "scaler" in state and self.precision is not None and self.precision.scaler is not None:
            self.precision.scaler.load_state_dict(state["scaler"])

    def _inputs(self, xs: torch.Tensor) -> Callable[[Architecture], torch.Tensor]:
        cache: dict[int, torch.Tensor] = {}

        def at(arch: Architecture) -> torch.Tensor:
            if arch.resolution not in cache:
                # channels_last, as the supernet's weights (see train_supernet).
                x = self.data.normalise(xs, arch.resolution).contiguous(
                    memory_format=torch.channels_last
                )
                cache[arch.resolution] = x
            return cache[arch.resolution]

        return at

    def run(self, *, on_step: Callable[[bool], None]) -> None:
        """Train from the current position to the end; ``on_step(epoch_end)`` after
        every step (checkpoints and progress hang on it)."""
        self.supernet.train()
        xs_all, ys_all = self.data.train.x, self.data.train.y
        batch, per_epoch, total = self.recipe.batch_size, self.steps_per_epoch, self.total
        while self.epoch < self.recipe.epochs:
            order = self.order(self.epoch)
            while self.step < per_epoch:
                idx = order[self.step * batch : (self.step + 1) * batch][self.rank :: self.world]
                xs = xs_all[idx].to(self.device, non_blocking=True)
                ys = ys_all[idx].to(self.device, non_blocking=True)
                lr = lr_at(self.done, total, self.recipe.train_config())
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss = sandwich_step(
                    self.supernet,
                    self.sandwich,
                    self._inputs(xs),
                    ys,
                    self.optimizer,
                    self.rng,
                    model=self.model,
                    precision=self.precision,
                )
                if not (math.isfinite(loss.largest) and math.isfinite(loss.distill)):
                    raise NasError(
                        f"supernet training diverged (non-finite loss) at epoch "
                        f"{self.epoch + 1}, step {self.step + 1}, lr {lr:.3g}: lower it",
                        field="lr",
                    )
                self.step += 1
                if self.step == per_epoch:
                    self.epoch, self.step = self.epoch + 1, 0
                    on_step(True)
                    break
                on_step(False)


def train_supernet(
    space: SearchSpace,
    data: Dataset,
    recipe: SupernetRecipe,
    *,
    checkpoint: Path,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> Supernet:
    """Train ``space``'s supernet on ``data.train`` by ``recipe``; returns it in eval
    mode on ``device``.

    ``checkpoint`` (see nas.supernet.store.checkpoint_path) is where it is stored: a
    finished one there is loaded instead of trained, an unfinished one resumed, and one
    of another space, data or recipe refused (a NasError naming the file and field,
    before any training). It trains in channels_last, on the CPU too (oneDNN's convolutions
    run these small nets several times faster in it, as stand-alone training finds:
    nas.train.config.TrainConfig.channels_last), and in mixed precision on CUDA.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    check_data(space, data, recipe)
    space_fp, data_fp = space_fingerprint(space), data_fingerprint(data)
    path = Path(checkpoint)
    saved = read_checkpoint(path, space_fp, data_fp, recipe) if path.exists() else None
    net = Supernet(space, seed=recipe.seed)
    if saved is not None:
        net.load_state_dict(saved["model"], strict=True)
    net = net.to(dev).to(memory_format=torch.channels_last)
    if saved is not None and saved["done"]:
        return net.eval()
    with seeded(recipe.seed, dev):
        loop = Loop(net, data, recipe, dev)
        if saved is not None:
            loop.restore(saved["training"])
        every = recipe.checkpoint_every

        def on_step(epoch_end: bool) -> None:
            finished = loop.epoch == recipe.epochs
            if epoch_end or (every and loop.done % every == 0):
                save_checkpoint(
                    path, net, data_fp=data_fp, recipe=recipe, done=finished, training=loop.state()
                )
            if progress is not None:
                progress(loop.done, loop.total)

        loop.run(on_step=on_step)
    return net.eval()
