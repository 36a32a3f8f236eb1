"""How well do latency estimators repeat themselves on this machine?

    python benchmarks/timing_estimators.py [--networks 60] [--rounds 3] [--space mobile]
        [--resolution 64] [--fresh-builds]

Random networks of the space are timed in windows (warm-up, then 21 samples of at least
2 ms each); the windows of all networks are interleaved round by round, in two passes of
``rounds`` rounds each. From the very same windows it computes several estimators per
pass and prints, for each, the share of networks whose two passes agree within 5% and
10%: the median of one window (what nas.latency.measure reports), the median of the
rounds' medians, the floor (the fastest sample of any round: contention only slows;
what nas.latency.measure reports since 2026-12-04) of the first 1..rounds rounds, the
median of the rounds' floors and the 10th percentile of all samples; and, for drift, each
round's floors against every network's fastest round. ``--fresh-builds`` builds every
network again for the second pass, as a table build and a later validation do.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nas.model.builder import build
from nas.space.searchspace import load_space, sample_random

SAMPLES = 21
MIN_SAMPLE_S = 0.002


def window(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """One window: a short warm-up, then SAMPLES timings (ms per call)."""
    for _ in range(5):
        model(x)
    t0 = time.perf_counter()
    model(x)
    inner = max(1, int(MIN_SAMPLE_S / (time.perf_counter() - t0)) + 1)
    out = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            model(x)
        out.append((time.perf_counter_ns() - t0) / 1e6 / inner)
    return np.asarray(out)


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    d = np.abs(a - b) / b
    return f"within 5%: {np.mean(d <= 0.05):5.1%}  within 10%: {np.mean(d <= 0.10):5.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh-builds", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = load_space(args.space).with_data(resolution=args.resolution)
    rng = np.random.default_rng(args.seed)
    archs = [sample_random(space, rng) for _ in range(args.networks)]
    models = [build(a).eval() for a in archs]
    x = torch.randn(1, archs[0].in_channels, args.resolution, args.resolution)
    r = args.rounds
    raw = np.zeros((2 * r, len(models), SAMPLES))
    start = time.perf_counter()
    with torch.inference_mode():
        for k in range(2 * r):
            if k == r and args.fresh_builds:
                models = [build(a, seed=1).eval() for a in archs]
            for i, m in enumerate(models):
                raw[k, i] = window(m, x)
    print(
        f"{len(models)} networks of {space.name}, 2 passes x {r} interleaved rounds, "
        f"{time.perf_counter() - start:.0f} s"
    )
    medians, floors = np.median(raw, axis=-1), raw.min(axis=-1)
    # Drift: each round's floors against every network's fastest round, median over networks.
    speed = np.median(floors / floors.min(0), axis=1)
    print("rounds' floors / fastest round: " + " ".join(f"{v:.3f}" for v in speed))
    print(f"median of one window        {agreement(medians[0], medians[r])}")
    print(
        f"median of {r} window medians  "
        f"{agreement(np.median(medians[:r], 0), np.median(medians[r:], 0))}"
    )
    for k in range(1, r + 1):  # more windows: does the floor settle further?
        label = f"floor of {k} window{'s' if k > 1 else ' '}"
        print(f"{label:<28}{agreement(floors[:k].min(0), floors[r : r + k].min(0))}")
    if r >= 3:
        print(
            f"median of {r} window floors   "
            f"{agreement(np.median(floors[:r], 0), np.median(floors[r:], 0))}"
        )
    pooled = [raw[:r].transpose(1, 0, 2).reshape(len(models), -1), raw[r:].transpose(1, 0, 2)]
    pooled[1] = pooled[1].reshape(len(models), -1)
    low = [np.percentile(p, 10, axis=1) for p in pooled]
    print(f"p10 of all {r * SAMPLES} samples      {agreement(low[0], low[1])}")


if __name__ == "__main__":
    main()
