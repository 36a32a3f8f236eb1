"""Where a trial's memory goes: resident memory after each import, after the data, and
at its peak while one tiny network trains on MNIST (8,000 training images, 28 px,
batch 128), in this process and in a Ray worker as a search runs it.

    python benchmarks/trial_memory.py --data-path ../shared/data/mnist [--epochs 1]
        [--where both|local|ray]

Figures from /proc/self/status: VmRSS (resident now) and VmHWM (the peak), the peak
reset before training (``echo 5 > /proc/self/clear_refs``) so that it is the training's
own. Beside them, what the cost model predicts the training needs
(nas.model.memory.training_memory). Linux only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def status_mib() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MiB."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def load(path: str) -> Any:
    """The setup a search makes: 8,000 train / 1,000 val / 1,000 test images from the
    10,000 the shared folder holds."""
    from nas.train.data import load_dataset

    return load_dataset("mnist", path=path, limit=10_000)


def network() -> str:
    from nas.space.searchspace import load_space, sample_random

    space = load_space("tiny").with_data(in_channels=1, num_classes=10, resolution=28)
    return sample_random(space, 0).to_json()


def measure(data: Any, epochs: int) -> list[dict[str, Any]]:
    """The phases of one trial in this process: imports, data, training. ``data`` is the
    folder of the MNIST files, or the Ray ObjectRef of the loaded set (fetched here, as
    tune.with_parameters does)."""
    rows: list[dict[str, Any]] = [{"phase": "start", **status_mib()}]
    for module in ("torch", "optuna", "ray", "ray.tune", "nas.search.executors.ray_tune"):
        importlib.import_module(module)
        rows.append({"phase": f"import {module}", **status_mib()})
    import ray
    import torch

    from nas.model.arch import Architecture
    from nas.model.memory import training_memory
    from nas.train.config import TrainConfig
    from nas.train.loop import evaluate

    data = ray.get(data) if isinstance(data, ray.ObjectRef) else load(data)
    rows.append({"phase": "data", **status_mib(), "threads": torch.get_num_threads()})
    arch = Architecture.from_json(network())
    cfg = TrainConfig(epochs=epochs, batch_size=128, device="cpu", augment=0.25)
    reset_peak()
    before = status_mib()["VmRSS"]
    t0 = time.perf_counter()
    result = evaluate(arch, data, cfg)
    after = status_mib()
    estimate = training_memory(arch, batch=128, optimizer=cfg.optimizer, eval_batch=512)
    rows.append(
        {
            "phase": "training",
            **after,
            "peak_over_start_mib": after["VmHWM"] - before,
            "estimate_mib": estimate.total / MIB,
            "status": result.status,
            "seconds": time.perf_counter() - t0,
        }
    )
    return rows


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'phase':<36}{'VmRSS':>9}{'VmHWM':>9}{'+RSS':>8}  (MiB)")
    last = 0.0
    for r in rows:
        print(
            f"{r['phase']:<36}{r['VmRSS']:>9.0f}{r['VmHWM']:>9.0f}{r['VmRSS'] - last:>8.0f}"
            + (
                f"  peak over start of training {r['peak_over_start_mib']:.0f}, cost-model "
                f"estimate {r['estimate_mib']:.1f}, {r['status']} in {r['seconds']:.1f} s"
                if r["phase"] == "training"
                else ""
            )
        )
        last = r["VmRSS"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--where", choices=("both", "local", "ray"), default="both")
    args = parser.parse_args()

    if args.where in ("both", "local"):  # first: nothing heavy is imported yet
        print_rows("this process", measure(args.data_path, args.epochs))
    if args.where in ("both", "ray"):
        import ray

        data = load(args.data_path)
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        try:
            ref = ray.put(data)  # as tune.with_parameters ships a search's data
            task = ray.remote(num_cpus=1)(measure)
            rows = ray.get(task.remote(ref, args.epochs))
        finally:
            ray.shutdown()
        print_rows("a Ray worker (1 CPU, as a trial with cpus_per_trial = 1)", rows)
        print(json.dumps(rows[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
