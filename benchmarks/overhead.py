"""What do Ray + Optuna + the storage cost per trial, and do two workers double throughput?

    python benchmarks/overhead.py [--trials 8] [--seconds 10]

Picks the number of epochs so a trial of the `tiny` space on digits trains for about
``--seconds`` on one thread, runs the same random-sampler study (a) through `nas search`'s
orchestration with one worker, (b) as a bare in-process loop training exactly the same
architectures, and (c) through the orchestration with two workers. Prints the per-trial
overhead of (a) over (b) and the throughput of (c) over (a).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import ray
import torch

from nas.config import load_study
from nas.orchestrate import prepare, run_trials
from nas.results import EvaluationStore
from nas.space import sample_random
from nas.train import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="nas-overhead-")
    os.chdir(work)
    torch.set_num_threads(1)

    def study_for(name: str, epochs: int, workers: int):
        return load_study(
            "digits",
            {
                "name": name,
                "train.epochs": epochs,
                "train.max_threads": 1,
                "search.trials": args.trials,
                "search.sampler": "random",
                "search.max_concurrent": workers,
                "search.timeout_s": 0,
                "search.storage": f"sqlite:///{work}/{name}.db",  # no reuse across runs
            },
        )

    # Epochs for ~args.seconds per trial: whole-trial time per epoch (set-up included, it
    # is part of a trial) at 4 epochs, averaged over architectures the sampler may pick.
    probe = prepare(study_for("probe", 4, 1))
    per_epoch = []
    for seed in range(4):
        t0 = time.perf_counter()
        evaluate(sample_random(probe.space, seed), probe.data, probe.study.train)
        per_epoch.append((time.perf_counter() - t0) / 4)
    epochs = max(1, round(args.seconds / (sum(per_epoch) / len(per_epoch))))

    one = prepare(study_for("one_worker", epochs, 1))
    wall_one, errors = run_trials(one, num_cpus=2)
    assert not errors, errors
    trained = [e for e in EvaluationStore(one.study.search.storage).of_study("one_worker")]
    bare_start = time.perf_counter()
    for e in trained:
        evaluate(e.arch, one.data, one.study.train)
    bare = time.perf_counter() - bare_start
    two = prepare(study_for("two_workers", epochs, 2))
    wall_two, errors = run_trials(two, num_cpus=2)
    assert not errors, errors
    ray.shutdown()

    n = len(trained)
    print(f"{n} trials of ~{bare / n:.1f} s ({epochs} epochs, 1 thread each), workdir {work}")
    print(f"bare loop:            {bare:7.1f} s  ({n / bare:.3f} trials/s)")
    print(f"orchestrated, 1 worker: {wall_one:5.1f} s  ({n / wall_one:.3f} trials/s)")
    print(f"orchestrated, 2 workers: {wall_two:4.1f} s  ({args.trials / wall_two:.3f} trials/s)")
    print(
        f"overhead per trial: {(wall_one - bare) / n:.2f} s = {100 * (wall_one - bare) / bare:.1f}%"
    )
    print(f"two workers vs one: {wall_one / wall_two:.2f}x throughput")


if __name__ == "__main__":
    main()
