"""What giving a finished trial's memory back costs (nas.train.device.release_memory),
with the process's first survivors frozen out of later collections and without.

    python benchmarks/trial_release.py [--trials 20] [--epochs 1]

Each arm runs in a fresh process holding what a Ray trial worker holds (torch, Ray,
Optuna, SQLAlchemy, the digits data): ``--trials`` short trainings of random `tiny`
networks through ``nas.train.loop.evaluate`` (1 thread), as the default `nas search`'s
first rung trains them. Arm ``full``: every release walks every object the process
holds (``_freeze_survivors`` made a no-op); arm ``frozen``: as nas does. Prints per
arm the median release and training time per trial, and the objects a collection
walks after the last trial.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def _child(arm: str, trials: int, epochs: int) -> dict[str, float]:
    import gc

    import optuna  # noqa: F401  (a trial worker holds them all)
    import ray  # noqa: F401
    import sqlalchemy  # noqa: F401
    import torch

    import nas.search.executors.ray_tune  # noqa: F401
    import nas.train.device as device
    import nas.train.loop as loop
    from nas.search.config import load_study
    from nas.search.setup import training_data
    from nas.space.codec import sample_random

    torch.set_num_threads(1)
    if arm == "full":
        device._freeze_survivors = lambda: None  # type: ignore[assignment]
    release = loop.release_memory
    spent: list[float] = []

    def timed(dev: torch.device) -> None:
        t0 = time.perf_counter()
        release(dev)
        spent.append(time.perf_counter() - t0)

    loop.release_memory = timed  # type: ignore[assignment]
    study = load_study("digits", {"train.epochs": epochs})
    data, space = training_data(study)
    seconds = []
    for seed in range(trials):
        t0 = time.perf_counter()
        loop.evaluate(sample_random(space, seed), data, study.train)
        seconds.append(time.perf_counter() - t0)
    return {
        "release_ms": 1e3 * statistics.median(spent),
        "first_release_ms": 1e3 * spent[0],
        "trial_s": statistics.median(seconds),
        "walked": len(gc.get_objects()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.trials, args.epochs)))
        return
    print(f"{args.trials} trials of {args.epochs} epoch(s), `tiny` on digits, 1 thread")
    print("arm      release ms (median)  first release ms  trial s (median)  objects walked")
    for arm in ("full", "frozen", "full", "frozen"):  # alternated: the machine drifts
        out = subprocess.run(
            [sys.executable, __file__, "--child", arm, "--trials", str(args.trials),
             "--epochs", str(args.epochs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{arm:8s} {r['release_ms']:19.1f} {r['first_release_ms']:17.1f} "
            f"{r['trial_s']:17.3f} {r['walked']:15,d}",
            flush=True,
        )


if __name__ == "__main__":
    main()
