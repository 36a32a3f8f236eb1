"""Multi-objective successive halving on NAS-Bench-201's two fidelities, without noise.

    python benchmarks/moasha_nb201.py --data ../shared/data/nasbench201 [--device pixel3]
        [--seeds 20] [--trials 100] [--eta 3]

Each seed draws distinct networks (one representative per equivalence class) in a random
order; both arms see that same order. The full-fidelity arm charges 200 epochs per
network. The halving arm charges 12, and the networks nas.search.halving.ParetoHalving
promotes at the 12-epoch rung (top 1/eta by non-dominated rank on (accuracy after 12
epochs, latency), then crowding distance) are charged the remaining 188. Only networks
trained to 200 epochs enter a front.

Both fidelities are the one-seed CIFAR-10 *test* accuracy after 12 and after 200 epochs
(the only 12-epoch figure the tables hold): selection sees the test split here, which a
real search must not. Hypervolume: of (accuracy after 200 epochs, latency on --device)
over that of the table's true front, both against the space's median accuracy and
median latency (as nas.bench.nb201.hypervolume_ratio).

Reported per seed: the full arm's hypervolume after --trials networks (its budget, B =
200 * trials epochs), and the epochs the halving arm needed to first reach it.
Goal: at most B / 2.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from nas.bench import nb201
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import hypervolume_2d, non_dominated
from nas.search.halving import ParetoHalving

LOW, HIGH = 12, 200


class _Front:
    """Running hypervolume ratio of the networks trained to the last epoch."""

    def __init__(self, acc: np.ndarray, lat: np.ndarray, ref: tuple[float, float], best: float):
        self.acc, self.lat, self.ref, self.best = acc, lat, ref, best
        self.points: list[tuple[float, float]] = []

    def add(self, row: int) -> float:
        self.points.append((float(self.acc[row]), float(self.lat[row])))
        return hypervolume_2d(self.points, self.ref, ACCURACY_LATENCY) / self.best


def _arms(table: nb201.Table, order: np.ndarray, device: str, eta: int, trials: int):
    acc, low, lat = table.single_seed_accuracy(), table.low_fidelity(), table.latency(device)
    ref = (float(np.median(acc)), float(np.median(lat)))
    front = non_dominated(np.column_stack([acc, lat]), ACCURACY_LATENCY)
    best = hypervolume_2d(np.column_stack([acc[front], lat[front]]), ref, ACCURACY_LATENCY)
    full = _Front(acc, lat, ref, best)
    target = 0.0
    for row in order[:trials]:
        target = full.add(row)
    halving = ParetoHalving(levels=(LOW,), eta=eta, directions=ACCURACY_LATENCY)
    mine = _Front(acc, lat, ref, best)
    epochs, reached_at, promoted, seen = 0, None, 0, 0
    for row in order:
        epochs += LOW
        seen += 1
        if halving.report(int(row), LOW, (float(low[row]), float(lat[row]))):
            epochs += HIGH - LOW
            promoted += 1
            if mine.add(row) >= target - 1e-12:
                reached_at = epochs
                break
    return target, trials * HIGH, reached_at, seen, promoted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of the NAS-Bench-201 tables")
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--eta", type=int, default=3)
    args = parser.parse_args()
    table = nb201.load_table(args.data)
    distinct = np.flatnonzero(table.canonical_ids == np.arange(len(table)))
    print(f"{len(distinct)} distinct networks; device {args.device}; eta {args.eta}")
    print("seed  full HV @B   B epochs  halving reaches it at  ratio   networks seen/promoted")
    ratios = []
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(distinct)
        target, budget, at, seen, promoted = _arms(table, order, args.device, args.eta, args.trials)
        ratio = at / budget if at is not None else float("inf")
        ratios.append(ratio)
        print(
            f"{seed:4d}  {target:10.4f}  {budget:8d}  {at if at else 'never':>21}  "
            f"{ratio:5.2f}   {seen}/{promoted}"
        )
    print(
        f"epochs to the full arm's final hypervolume, as a fraction of its budget: median "
        f"{statistics.median(ratios):.2f}, mean {statistics.fmean(ratios):.2f}, worst "
        f"{max(ratios):.2f}; seeds at or under 0.5: {sum(r <= 0.5 for r in ratios)}/{len(ratios)}"
    )


if __name__ == "__main__":
    main()
