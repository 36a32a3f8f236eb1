"""Training throughput on a GPU: nas's trial loop with and without AMP and channels_last,
against a plain PyTorch loop of the same network on the same data.

    python benchmarks/gpu_train.py [--images 20000] [--epochs 3] [--batch 256] [--device cpu]

Synthetic CIFAR-sized data (uint8 3x32x32, random labels: the figure is images per
second, not accuracy; the GPU machine reaches no network for a real data set). The
network: a ``mobile`` space sample at 32 px. Each setting trains ``--epochs`` epochs;
images per second is the training images of the epochs after the first (warm-up)
divided by their seconds, a validation pass included in both loops. Exits 2 without
CUDA, unless ``--device cpu``: a smoke run of the same code on the CPU (nas uses AMP on
CUDA only, so only channels_last varies there; its figures are no GPU figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

from nas.model.builder import build
from nas.space.searchspace import load_space, sample_random
from nas.train.config import TrainConfig
from nas.train.loop import evaluate
from nas.train.splits import assemble
from nas.train.trial import EVAL_BATCH, optimizer_for


def synthetic(images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(images, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=images)
    return assemble("synthetic", x, y, 10, seed, 0.1, 0.0, None)


def ours(arch, data, cfg: TrainConfig) -> float:
    result = evaluate(arch, data, cfg)
    if result.status != "complete":
        raise SystemExit(f"nas trial {result.status}: {result.reason}")
    warm = result.history[1:]  # the first epoch warms up (cuDNN autotuning, caches)
    steps = len(data.train) // cfg.batch_size
    return len(warm) * steps * cfg.batch_size / sum(e.seconds for e in warm)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain(arch, data, cfg: TrainConfig) -> float:
    """The textbook loop: float32, NCHW, data on the device, SGD, one validation pass."""
    device = torch.device(cfg.device)
    model = build(arch, seed=cfg.seed).to(device)
    opt = optimizer_for(model, cfg)
    xs, ys = data.train.x.to(device), data.train.y.to(device)
    xv = data.val.x.to(device)
    n = len(ys)
    steps = n // cfg.batch_size
    seconds = []
    for _ in range(cfg.epochs):
        _sync(device)
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device)
        for k in range(steps):
            idx = order[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(data.normalise(xs[idx])), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            for s in range(0, len(xv), EVAL_BATCH):
                model(data.normalise(xv[s : s + EVAL_BATCH])).argmax(1)
        _sync(device)
        seconds.append(time.perf_counter() - t0)
    return (cfg.epochs - 1) * steps * cfg.batch_size / sum(seconds[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU (--device cpu: a smoke run)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.epochs < 2:
        print("--epochs must be at least 2 (the first one warms up)", file=sys.stderr)
        return 2
    data = synthetic(args.images)
    space = load_space("mobile").with_data(in_channels=3, num_classes=10, resolution=32)
    arch = sample_random(space, 0)
    base = TrainConfig(epochs=args.epochs, batch_size=args.batch, device=args.device, lr=0.01)
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (smoke run)"
    print(f"{name}, torch {torch.__version__}, {arch.compact()}")
    print(f"{len(data.train)} training images, batch {args.batch}, {args.epochs} epochs")
    rows = [("plain PyTorch (float32, NCHW)", plain(arch, data, base))]
    for amp in (False, True) if args.device == "cuda" else (False,):
        for cl in (False, True):
            cfg = dataclasses.replace(base, amp=amp, channels_last=cl)
            label = f"nas (amp {'on' if amp else 'off'}, channels_last {'on' if cl else 'off'})"
            rows.append((label, ours(arch, data, cfg)))
    reference = rows[0][1]
    for label, ips in rows:
        print(f"{label:<44}{ips:>10.0f} images/s  {ips / reference:5.2f}x plain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
