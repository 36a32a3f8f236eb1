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

from nas.search.config import load_study
from nas.search.results import EvaluationStore
from nas.search.runner import run_trials
from nas.search.setup import prepare
from nas.space.searchspace import sample_random
from nas.train.loop import evaluate


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

    # Epochs for ~args.seconds per trial: the bare training time per epoch at 12 epochs,
    # averaged over architectures the sampler may pick.
    probe = prepare(study_for("probe", 12, 1))
    per_epoch = []
    for seed in range(4):
        t0 = time.perf_counter()
        evaluate(sample_random(probe.space, seed), probe.data, probe.study.train)
        per_epoch.append((time.perf_counter() - t0) / 12)
    epochs = max(1, round(args.seconds / (sum(per_epoch) / len(per_epoch))))

    def orchestrated(name: str, workers: int) -> tuple[float, list[float]]:
        """Wall time of run_trials and the moment each trial ended (from its start)."""
        ends: list[float] = []
        setup = prepare(study_for(name, epochs, workers))
        t0 = time.perf_counter()
        wall, errors = run_trials(
            setup, num_cpus=2, on_trial=lambda: ends.append(time.perf_counter() - t0)
        )
        assert not errors, errors
        return wall, ends

    wall_one, ends_one = orchestrated("one_worker", 1)
    trained = list(
        EvaluationStore(study_for("one_worker", epochs, 1).search.storage).of_study("one_worker")
    )  # in the order they ran (one worker: one after the other)
    bare_each = []
    for e in trained:
        t0 = time.perf_counter()
        evaluate(e.arch, probe.data, study_for("x", epochs, 1).train)
        bare_each.append(time.perf_counter() - t0)
    wall_two, ends_two = orchestrated("two_workers", 2)
    ray.shutdown()

    n, bare = len(trained), sum(bare_each)
    # Steady state: from the first trial's end to the last's, against the bare time of
    # the same architectures; the first trial's end minus its bare time is the start-up.
    steady = ends_one[-1] - ends_one[0]
    steady_bare = sum(bare_each[1:])
    startup = ends_one[0] - bare_each[0]
    print(f"{n} trials of ~{bare / n:.1f} s ({epochs} epochs, 1 thread each), workdir {work}")
    print(f"bare loop:               {bare:6.1f} s  ({n / bare:.3f} trials/s)")
    print(f"orchestrated, 1 worker:  {wall_one:6.1f} s  ({n / wall_one:.3f} trials/s)")
    print(f"orchestrated, 2 workers: {wall_two:6.1f} s  ({n / wall_two:.3f} trials/s)")
    print(f"start-up (Tune experiment, first actor): {startup:.2f} s once")
    print(
        f"overhead per trial, steady state: {(steady - steady_bare) / (n - 1):.2f} s = "
        f"{100 * (steady - steady_bare) / steady_bare:.1f}%"
    )
    print(
        f"overhead per trial, whole run with start-up: {(wall_one - bare) / n:.2f} s = "
        f"{100 * (wall_one - bare) / bare:.1f}%"
    )
    rate_one = (len(ends_one) - 1) / (ends_one[-1] - ends_one[0])
    rate_two = (len(ends_two) - 2) / (ends_two[-1] - ends_two[1])
    print(
        f"two workers vs one: {wall_one / wall_two:.2f}x (whole run), "
        f"{rate_two / rate_one:.2f}x (steady state, trial ends per second)"
    )


if __name__ == "__main__":
    main()
