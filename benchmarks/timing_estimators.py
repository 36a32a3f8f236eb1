"""How well do latency estimators repeat themselves on this machine?

    python benchmarks/timing_estimators.py [--networks 60] [--rounds 3] [--space mobile]
        [--resolution 64] [--fresh-builds]

Random networks of the space are timed in windows (warm-up, then 21 samples of at least
2 ms each); the windows of all networks are interleaved round by round, in two passes of
``rounds`` rounds each. From the very same windows it computes several estimators per
pass and prints, for each, the share of networks whose two passes agree within 5% and
10%: the median of one window (what nas.latency.measure reports), the median of the
rounds' medians, and the floor (the fastest sample of any round: contention only slows;
what nas.latency.measure reports since 2026-12-04). ``--fresh-builds`` builds every network
again for the second pass, as a table build and a later validation do.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nas.builder import build
from nas.space import load_space, sample_random

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
    print(f"median of one window        {agreement(medians[0], medians[r])}")
    print(
        f"median of {r} window medians  "
        f"{agreement(np.median(medians[:r], 0), np.median(medians[r:], 0))}"
    )
    print(f"floor of {r} windows          {agreement(floors[:r].min(0), floors[r:].min(0))}")


if __name__ == "__main__":
    main()
