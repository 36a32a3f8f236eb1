"""Where a trial's memory goes: resident memory after each import, after the data, and
at its peak while one tiny network trains on MNIST (8,000 training images, 28 px,
batch 128): in this process and in a Ray task (phase by phase: ``--where local|ray|both``),
in a Tune search's reused worker, trial after trial (``--where tune``), and the cost
model's figure against the resident peak of training steps (``--where estimate``).

    python benchmarks/trial_memory.py --data-path ../shared/data/mnist [--epochs 1]
        [--where both|local|ray|tune|estimate] [--trials 3]

Figures from /proc/self/status: VmRSS (resident now) and VmHWM (the peak), the peak
reset before training (``echo 5 > /proc/self/clear_refs``) so that it is the training's
own. Beside them, what the cost model predicts the training needs
(nas.model.memory.training_memory). Linux only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
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
    folder of the MNIST files, or the loaded set (a Ray task gets it from the object
    store, as tune.with_parameters ships it)."""
    rows: list[dict[str, Any]] = [{"phase": "start", **status_mib()}]
    for module in ("torch", "optuna", "ray", "ray.tune", "nas.search.executors.ray_tune"):
        importlib.import_module(module)
        rows.append({"phase": f"import {module}", **status_mib()})
    import torch

    from nas.model.arch import Architecture
    from nas.model.memory import training_memory
    from nas.train.config import TrainConfig
    from nas.train.dataset import Dataset
    from nas.train.loop import evaluate

    # Ray resolves an ObjectRef passed as a task's argument before the task starts.
    data = data if isinstance(data, Dataset) else load(data)
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


def _parent(pid: int) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _ours(pid: int) -> bool:
    """Whether ``pid`` descends from this process (its Ray, not another user's)."""
    me = os.getpid()
    while pid > 1:
        pid = _parent(pid)
        if pid == me:
            return True
    return False


def ray_workers() -> dict[int, dict[str, Any]]:
    """The Ray worker processes this process started (their titles start with
    ``ray::``): pid -> title and /proc memory figures, in MiB."""
    out: dict[int, dict[str, Any]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if not title.startswith("ray::") or not _ours(int(proc.name)):
                continue
            fields = {}
            for line in (proc / "status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    fields[key] = int(value.split()[0]) / 1024
        except OSError:  # it ended while we looked
            continue
        out[int(proc.name)] = {"title": title, **fields}
    return out


class Watch:
    """Polls Ray's workers every ``every`` seconds in a thread; keeps, per worker, the
    titles it had and its figures when its resident memory was highest."""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        self.every, self.peaks, self.titles = every, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, row in ray_workers().items():
                self.titles.setdefault(pid, set()).add(row["title"])
                if row.get("VmRSS", 0) >= self.peaks.get(pid, {}).get("VmRSS", -1):
                    self.peaks[pid] = row
                else:  # VmHWM only grows: keep the latest
                    self.peaks[pid]["VmHWM"] = row.get("VmHWM", 0)
            self._stop.wait(self.every)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def in_tune(config: dict[str, Any], **params: Any) -> None:
    """nas's Tune trainable, with this worker's memory before and after it. With
    ``release`` False, nas.train.loop gives nothing back after a trial (as before
    nas.train.device.release_memory), for the comparison."""
    from ray import tune

    import nas.train.loop
    from nas.model.arch import Architecture
    from nas.search.executors.ray_tune import _trainable

    if not config["release"]:
        nas.train.loop._release = lambda trial: None
    before, started = status_mib(), time.time()
    _trainable(config["c"], **params)
    after = status_mib()
    arch_id = Architecture.from_json(config["c"]["arch_json"]).id
    tune.report({"arch_id": arch_id, "started": started,
                 "rss_before": before["VmRSS"], "hwm_before": before["VmHWM"],
                 "rss_after": after["VmRSS"], "hwm_after": after["VmHWM"]})  # fmt: skip


def tune_search(data_path: str, trials: int, epochs: int, workdir: str, release: bool) -> None:
    """``trials`` networks of ``tiny`` at 28 px, one after another in one reused Tune
    worker (1 CPU), as nas's Ray executor runs them: the same trainable, resources,
    data shipped by tune.with_parameters; the watch reads the worker from /proc."""
    import ray
    from ray import tune

    from nas.model.cost import cost
    from nas.search.config import load_study
    from nas.search.results import EvaluationStore
    from nas.space.searchspace import load_space, sample_random

    study = load_study(
        "mnist",
        {
            "search.storage": f"sqlite:///{workdir}/studies.db",
            "export_dir": f"{workdir}/exports",
            "data.path": data_path,
            "data.limit": 10_000,
            "train.epochs": epochs,
            "objective.mode": "accuracy",
            "objective.metrics": ["accuracy"],
        },
    )
    space = load_space("tiny").with_data(in_channels=1, num_classes=10, resolution=28)
    configs = []
    for seed in range(trials):
        arch = sample_random(space, seed)
        c = cost(arch)
        configs.append({"arch_json": arch.to_json(), "hp": {}, "latency_ms": 0.0,
                        "params": c.params, "macs": c.macs})  # fmt: skip
    data = load(data_path)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # as nas's executor: no result boxes
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(in_tune, study=study, data=data, artifacts=workdir),
            {"cpu": 1.0, "gpu": 0.0},
        )
        tuner = tune.Tuner(
            trainable,
            param_space={"c": tune.grid_search(configs), "release": release},
            tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=f"{workdir}/ray", verbose=0),
        )
        with Watch() as watch:
            grid = tuner.fit()
    finally:
        ray.shutdown()
    statuses = {
        e.arch_id: e.status for e in EvaluationStore(study.search.storage).of_study("mnist")
    }
    arm = "memory released after each trial" if release else "nothing released (as before)"
    print(f"\na Tune search, {arm}: one worker (1 CPU, reused), trials in turn (MiB)")
    print(f"{'trial':<7}{'status':<10}{'RSS before':>11}{'HWM before':>11}"
          f"{'RSS after':>10}{'HWM after':>10}")  # fmt: skip
    rows = sorted((r.metrics or {} for r in grid), key=lambda m: m.get("started", 0))
    for i, m in enumerate(rows):  # in the order they ran
        print(f"{i:<7}{statuses.get(m.get('arch_id', ''), 'error')[:9]:<10}"
              f"{m.get('rss_before', 0):>11.0f}{m.get('hwm_before', 0):>11.0f}"
              f"{m.get('rss_after', 0):>10.0f}{m.get('hwm_after', 0):>10.0f}")  # fmt: skip
    print("Ray workers (peak VmHWM; RssAnon/RssFile/RssShmem when VmRSS was highest):")
    for pid, row in sorted(watch.peaks.items()):
        titles = ", ".join(sorted(watch.titles[pid]))
        print(
            f"  {pid}: VmHWM {row.get('VmHWM', 0):.0f}, anon {row.get('RssAnon', 0):.0f}, "
            f"file {row.get('RssFile', 0):.0f}, shmem {row.get('RssShmem', 0):.0f}  [{titles}]"
        )


def estimate_against_peaks(data_path: str, networks: int) -> None:
    """For ``networks`` samples of ``tiny`` at 28 px: the cost model's training memory
    against the resident peak of two training steps at batch 128 (SGD) and of one
    evaluation batch of EVAL_BATCH, each over what the process held just before (freed
    memory given back first, the peak reset)."""
    import torch
    from torch.nn import functional as F

    from nas.model.builder import build
    from nas.model.memory import training_memory
    from nas.space.searchspace import load_space, sample_random
    from nas.train.device import release_memory
    from nas.train.trial import EVAL_BATCH

    data = load(data_path)
    space = load_space("tiny").with_data(in_channels=1, num_classes=10, resolution=28)
    cpu = torch.device("cpu")

    def base() -> float:
        release_memory(cpu)
        reset_peak()
        return status_mib()["VmRSS"]

    print(f"\ncost model against resident peaks, batch 128 / eval {EVAL_BATCH} (MiB)")
    print(f"{'network':<10}{'estimate':>9}{'train peak':>11}{'eval peak':>10}{'ratio':>7}")
    for seed in range(networks):
        arch = sample_random(space, seed)
        est = training_memory(arch, batch=128, eval_batch=EVAL_BATCH).total / MIB
        # channels_last, as a trial trains by default (TrainConfig.channels_last)
        model = build(arch, seed=0).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = data.normalise(data.train.x[:128]).contiguous(memory_format=torch.channels_last)
        y = data.train.y[:128]
        start = base()
        for _ in range(2):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        del loss
        weights = 4 * sum(p.numel() for p in model.parameters()) / MIB
        # held before the steps: the weights; gradients and momentum come in the steps
        train = status_mib()["VmHWM"] - start + weights
        start = base()
        model.eval()
        with torch.inference_mode():
            xv = data.normalise(data.val.x[:EVAL_BATCH])
            model(xv.contiguous(memory_format=torch.channels_last))
        # a trial scores with its weights, gradients and momentum still held
        evaluation = status_mib()["VmHWM"] - start + 3 * weights
        peak = max(train, evaluation)
        print(f"{seed:<10}{est:>9.1f}{train:>11.0f}{evaluation:>10.0f}{peak / est:>7.1f}")
        del model, opt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--where", choices=("both", "local", "ray", "tune", "estimate"), default="both"
    )
    parser.add_argument("--trials", type=int, default=3, help="networks, with tune/estimate")
    args = parser.parse_args()

    if args.where == "estimate":
        estimate_against_peaks(args.data_path, args.trials)
        return 0

    if args.where == "tune":
        import tempfile

        for release in (False, True):  # one after the other, each in a fresh Ray
            with tempfile.TemporaryDirectory(prefix="nas-trial-memory-") as workdir:
                tune_search(args.data_path, args.trials, args.epochs, workdir, release)
        return 0

    if args.where in ("both", "local"):  # first: nothing heavy is imported yet
        print_rows("this process", measure(args.data_path, args.epochs))
    if args.where in ("both", "ray"):
        import ray

        data = load(args.data_path)
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
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
