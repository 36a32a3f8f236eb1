"""Few long windows or many short ones: which whole-model figure repeats itself better?

    python benchmarks/window_shapes.py [--target onnxruntime-cpu] [--space mobile]
        [--resolution 64] [--networks 32] [--blocks 4] [--shapes 6x21,18x7]

Random networks of the space are measured as a validation measures them
(``nas.latency.measure.measure_runners``: windows interleaved round by round, each
window floor paced by the space's anchors, the median of the floors), ``blocks`` times
per window shape (windows x samples per window), the shapes taking turns so that each
sees the same machine. For each shape it prints the share of networks whose figures in
consecutive blocks agree within 5% and 10%, the spread of their ratio, how many figures
were refused (halves of the windows more than 5% apart) and the seconds one figure cost.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from nas.latency.anchors import Anchors, fresh_archs
from nas.latency.measure import Measurement, MeasureSettings, measure_runners
from nas.latency.runtimes import prepare_arch
from nas.latency.target import parse_target
from nas.space.searchspace import load_space

STREAM = 9  # networks no calibration or validation draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="onnxruntime-cpu")
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--shapes", default="6x21,18x7", help="windows x samples, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    target = parse_target(args.target)
    space = load_space(args.space).with_data(resolution=args.resolution)
    archs = list(fresh_archs(space, args.seed, STREAM, args.networks, set()))
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    runners = [prepare_arch(a, target) for a in archs]
    # Each shape its own anchors' reference (floors of another shape are not comparable).
    pacings = {shape: Anchors.of(space).pacing(target) for shape in shapes}
    figures: dict[tuple[int, int], list[list[float]]] = {s: [] for s in shapes}
    refused = dict.fromkeys(shapes, 0)
    cost = dict.fromkeys(shapes, 0.0)
    print(f"{len(archs)} networks of {args.space} @ {args.resolution} px on {args.target}")
    for block in range(args.blocks):
        for shape in shapes:
            windows, samples = shape
            settings = MeasureSettings(samples=samples, windows=windows)
            t0 = time.perf_counter()
            results = measure_runners(runners, settings, pacing=pacings[shape])
            cost[shape] += time.perf_counter() - t0
            figures[shape].append([r.ms if isinstance(r, Measurement) else np.nan for r in results])
            refused[shape] += sum(not isinstance(r, Measurement) for r in results)
            print(f"  block {block + 1}/{args.blocks}, {windows}x{samples}: "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip

    print(f"\n{'shape':>8}  pairs  within 5%  within 10%  sd of log ratio  refused  s/figure")
    for shape in shapes:
        f = np.asarray(figures[shape])
        ratio = np.log(f[1:] / f[:-1]).ravel()
        ratio = ratio[np.isfinite(ratio)]
        per_figure = cost[shape] / (args.blocks * len(archs))
        print(
            f"{shape[0]:>3}x{shape[1]:<4}  {len(ratio):5d}  "
            f"{np.mean(np.abs(ratio) <= np.log(1.05)):8.1%}  "
            f"{np.mean(np.abs(ratio) <= np.log(1.10)):9.1%}  "
            f"{statistics.pstdev(ratio):15.4f}  {refused[shape]:7d}  {per_figure:8.3f}"
        )


if __name__ == "__main__":
    main()
