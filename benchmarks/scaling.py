"""Compound scaling on MNIST: does accuracy grow with phi, and does compound scaling beat
width-only and depth-only scaling at equal MACs?

    python benchmarks/scaling.py [--seeds 3] [--epochs 3] [--max-points 4]
        [--data-path ../shared/data/mnist] [--workdir DIR]

Per seed s (grid sampler and training seeded s; the data split is the study's): `nas
scale`'s grid search and family phi = 0, 1, 2 in FLOPs mode on the bundled MNIST study's
recipe (searched hyperparameters dropped: one recipe for every network), then for phi = 1
and 2 a width-only and a depth-only scaled base whose MACs are nearest the compound
member's, trained with the same recipe through the same orchestration. Prints test
accuracy per seed, then mean and standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from pathlib import Path

import ray

from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.cost import cost
from nas.scale.compound import Multipliers, scale
from nas.scale.family import ScaleConfig, scale_family, train_networks
from nas.search.config import load_study
from nas.search.setup import prepare

#: The base: a small MBConv network for 28 px digits (stem stride 2: 14, 7, 4 px stages).
BASE = Architecture(
    name="mnist_base",
    resolution=28,
    in_channels=1,
    num_classes=10,
    stem=Stem(8, stride=2),
    stages=tuple(
        Stage.parse(s) for s in ("ir_r2_k3_s1_e3_c16", "ir_r2_k5_s2_e3_c24", "ir_r2_k3_s2_e3_c32")
    ),
    head=Head(channels=64),
)


def nearest(target_macs: float, make, values) -> Architecture:
    """The network ``make(v)`` whose MACs are nearest ``target_macs`` (log ratio)."""
    return min(
        (make(v) for v in values),
        key=lambda a: abs(math.log(cost(a).macs / target_macs)),
    )


def one_seed(seed: int, args) -> dict[str, tuple[float, int]]:
    study = load_study(
        "mnist",
        {
            "name": f"scaling_seed{seed}",
            "data.path": args.data_path,
            "train.epochs": args.epochs,
            "train.seed": seed,
            "search.seed": seed,
            "hyperparameters": [],
            "export_dir": f"exports/seed{seed}",
        },
    )
    cfg = ScaleConfig(mode="flops", phis=2, max_points=args.max_points)
    family = scale_family(study, BASE, cfg, note=print)
    c = family.grid.best.coefficients
    print(f"seed {seed}: best alpha {c.alpha:.2f} beta {c.beta:.2f} gamma {c.gamma:.2f}")
    results = {}
    for m in family.members:
        assert m.trained is not None
        results[f"compound phi={m.phi}"] = (m.trained.test_accuracy, m.macs)
    setup = prepare(study)
    steps = [1 + i / 100 for i in range(0, 400)]
    single: list[tuple[str, Architecture]] = []
    for m in family.members[1:]:
        single.append(
            (
                f"width-only phi={m.phi}",
                nearest(m.macs, lambda w: scale(BASE, Multipliers(1.0, w, 1.0)), steps),
            )
        )
        single.append(
            (
                f"depth-only phi={m.phi}",
                nearest(m.macs, lambda d: scale(BASE, Multipliers(d, 1.0, 1.0)), steps),
            )
        )
    out = Path(study.resolve(study.export_dir)) / "single"
    trained = train_networks(setup, "single", [a for _, a in single], out)
    for (label, arch), t in zip(single, trained, strict=True):
        results[label] = (t.test_accuracy, cost(arch).macs)
    for label, (acc, macs) in results.items():
        print(f"  {label:20s} test acc {acc:.4f}  MACs {macs:,}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-points", type=int, default=4)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    parser.add_argument("--data-path", default=str(shared))
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir or tempfile.mkdtemp(prefix="nas-scaling-"))
    print(f"workdir {os.getcwd()}")
    try:
        runs = [one_seed(s, args) for s in range(args.seeds)]
    finally:
        ray.shutdown()
    print(f"\n== test accuracy over {args.seeds} seeds (mean +- std), MACs of seed 0")
    for label in runs[0]:
        accs = [r[label][0] for r in runs]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(
            f"{label:20s} {statistics.mean(accs):.4f} +- {spread:.4f}   "
            f"MACs {runs[0][label][1]:>12,}   per seed " + " ".join(f"{a:.4f}" for a in accs)
        )


if __name__ == "__main__":
    main()
