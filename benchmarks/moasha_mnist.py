"""Multi-objective successive halving in a real pareto search: MNIST, with and without.

    python benchmarks/moasha_mnist.py --data-path ../shared/data/mnist [--seeds 3]
        [--trials 6] [--epochs 9] [--eta 3] [--limit 1000] [--workdir DIR]

The bundled ``mnist`` study (pareto: validation accuracy up, predicted eager-CPU latency
down; its searched learning rate dropped, so both arms train one recipe) on a seeded
subset of --limit images (80/10/10), in a small space of its own (SPACE below: a few hundred
networks, a latency table of a few dozen units where ``tiny``'s 3,126 take long to time
on a busy machine), run by the in-process executor (nas.search.runner.run_inprocess),
per seed (sampler and training seed):

- full: early stopping off, --trials trainings of --epochs epochs;
- halving: ``search.early_stopping`` with ``halving_eta`` = --eta and
  ``halving_min_epochs`` = 1 (9 epochs, eta 3: rungs at 1 and 3 epochs),
  3 x --trials trials.

The arms alternate which runs first from seed to seed, so a machine shared with other
work slows both alike; the load average before each arm is printed beside it.

Hypervolume: of the complete evaluations' (validation accuracy, predicted latency)
(stopped ones never count), against the reference point (0.1: chance on ten classes,
the largest predicted latency of any network either arm of the seed evaluated), after
each trial, at the time it ended (Optuna's datetime_complete) since the arm's first
trial started. Reported per seed: the full arm's final hypervolume and wall time T, and
the time the halving arm first reached that hypervolume, and the halving arm's
hypervolume at T. Goal: at most 0.6 T.

The latency table of the space is built once, in --workdir (the first run takes
minutes); its time is not counted. Each run needs a --workdir without studies (copy the
latency.db of an earlier one into it to skip the table).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nas.core.db import optuna_storage
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import hypervolume_2d
from nas.search.config import load_study
from nas.search.results import Evaluation, EvaluationStore
from nas.search.runner import run_inprocess
from nas.search.setup import prepare

#: Two stages of choices, at the data's 28x28.
SPACE = """
name = "moasha_mnist"
resolution = 28
in_channels = 1
num_classes = 10
[stem]
channels = 8
stride = 2
[head]
channels = [0, 32]
[[stages]]
op = ["conv", "ir"]
out_channels = [8, 16]
repeats = [1, 2]
stride = 2
kernel = [3, 5]
expansion = [1, 3]
[[stages]]
op = ["ds", "ir"]
out_channels = [16, 32]
stride = 2
kernel = 3
"""


def _arm(args, seed: int, halving: bool):
    """Run one arm; returns its trials' (seconds since start, complete evaluation or
    None) in the order they ended, and all its evaluations."""
    import optuna

    name = f"moasha_mnist_{'halving' if halving else 'full'}_{seed}"
    work = Path(args.workdir)
    if (work / f"{name}.db").exists():  # a study run on would span both runs' time
        raise SystemExit(f"{work / name}.db exists: give each run a --workdir of its own")
    study = load_study(
        "mnist",
        {
            "name": name,
            "space": str(work / "moasha_mnist.toml"),
            "data.path": args.data_path,
            "data.limit": args.limit,
            "train.epochs": args.epochs,
            "train.seed": seed,
            "hyperparameters": [],
            "latency.db": f"sqlite:///{work / 'latency.db'}",
            "search.storage": f"sqlite:///{work / name}.db",
            "search.executor": "inprocess",
            "search.sampler": "nsga2",
            "search.seed": seed,
            "search.trials": args.trials * (3 if halving else 1),
            "search.early_stopping": halving,
            "search.halving_eta": args.eta,
            "search.halving_min_epochs": 1,
            "export_dir": str(work / "exports"),
        },
    )
    setup = prepare(study)
    _, errors = run_inprocess(setup)
    if errors:
        raise SystemExit(f"{name}: {errors[0]}")
    evaluations = EvaluationStore(study.search.storage).of_study(name)
    done = {e.arch_id: e for e in evaluations if e.status == "complete"}
    trials = optuna.load_study(study_name=name, storage=optuna_storage(study.search.storage))
    ended = sorted(
        (t for t in trials.trials if t.datetime_complete is not None),
        key=lambda t: t.datetime_complete,
    )
    start = min(t.datetime_start for t in ended)
    timeline = []
    for t in ended:
        seconds = (t.datetime_complete - start).total_seconds()
        ev = done.get(t.user_attrs.get("arch_id", "")) if t.state.name == "COMPLETE" else None
        timeline.append((seconds, ev))
    return timeline, evaluations


def _curve(timeline, ref: tuple[float, float]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    curve = []
    for seconds, ev in timeline:
        if ev is not None:
            points.append((ev.val_accuracy, ev.latency_ms))
        hv = hypervolume_2d(points, ref, ACCURACY_LATENCY) if points else 0.0
        curve.append((seconds, hv))
    return curve


def _summary(evaluations: list[Evaluation]) -> str:
    stopped = [e for e in evaluations if e.status == "stopped"]
    complete = [e for e in evaluations if e.status == "complete"]
    return f"{len(complete)} complete, {len(stopped)} stopped"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-path", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--workdir", default="", help="latency table and studies (kept)")
    args = parser.parse_args()
    args.data_path = str(Path(args.data_path).resolve())
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="moasha-mnist-")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    (Path(args.workdir) / "moasha_mnist.toml").write_text(SPACE)
    torch.set_num_threads(1)  # one training at a time, one core: as a Ray trial gets
    print(
        f"mnist, {args.limit} images, {args.epochs} epochs, eta {args.eta}, full arm "
        f"{args.trials} trials; workdir {args.workdir}",
        flush=True,
    )
    began = time.perf_counter()
    ratios = []
    for seed in range(args.seeds):
        runs, loads = {}, {}
        for halving in (False, True) if seed % 2 == 0 else (True, False):
            loads[halving] = os.getloadavg()[0]
            runs[halving] = _arm(args, seed, halving)
        (full, full_evs), (mine, mine_evs) = runs[False], runs[True]
        budget = full[-1][0]
        slowest = max(e.latency_ms for e in full_evs + mine_evs)
        ref = (0.1, slowest)
        target = _curve(full, ref)[-1][1]
        at = next((s for s, hv in _curve(mine, ref) if hv >= target - 1e-12), None)
        ratio = at / budget if at is not None else float("inf")
        ratios.append(ratio)
        at_t = max((hv for s, hv in _curve(mine, ref) if s <= budget), default=0.0)
        print(
            f"seed {seed}: full HV {target:.4f} in {budget:.0f} s ({_summary(full_evs)}, "
            f"load {loads[False]:.1f}); halving reached it at "
            f"{f'{at:.0f} s' if at is not None else 'never'} ({ratio:.2f} T), its HV at T "
            f"{at_t:.4f}, after {mine[-1][0]:.0f} s {_curve(mine, ref)[-1][1]:.4f} "
            f"({_summary(mine_evs)}, load {loads[True]:.1f})",
            flush=True,
        )
    print(
        f"time to the full arm's hypervolume, as a fraction of its time: median "
        f"{statistics.median(ratios):.2f}, worst {max(ratios):.2f}; seeds at or under 0.6: "
        f"{sum(r <= 0.6 for r in ratios)}/{len(ratios)} ({time.perf_counter() - began:.0f} s "
        "in all, latency table included)",
        flush=True,
    )


if __name__ == "__main__":
    main()
