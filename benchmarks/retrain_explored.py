"""Which networks a finished search explored are really better than the baselines?

    python benchmarks/retrain_explored.py WORKDIR [--study digits] [--seeds 3] [--runs 5]

WORKDIR is a search_digits.py / search_mnist.py work directory (its nas_studies.db and
nas_latency.db). For each seed's study, every network the search trained and both
baselines are trained ``runs`` more times with fresh seeds (1000 s + 100 + j); it prints,
against the ResNet-style baseline's mean test accuracy: how many networks predicted
faster than it have at least its mean, the best of them, and the faster members of
the front chosen by the search's one training and by the mean of that training and k
more (k = 1, 2, 4). The oracle behind nas.search.confirm; slow (runs x networks trainings).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
from collections.abc import Sequence

import optuna
from _versus_baselines import baselines

from nas.core.pareto import pareto_front
from nas.search.config import load_study
from nas.search.setup import prepare
from nas.space.searchspace import decode
from nas.train.loop import evaluate


@dataclasses.dataclass(frozen=True)
class Scored:
    name: str
    latency: float
    search_val: float | None  # the search's own training (None: a baseline)
    vals: tuple[float, ...]
    tests: tuple[float, ...]

    @property
    def test(self) -> float:
        return statistics.mean(self.tests)


def faster_front(nets: Sequence[Scored], score, limit: float) -> list[float]:
    """Mean test accuracy of the front members (by ``score``, latency) faster than ``limit``."""
    points = [(score(n), n.latency) for n in nets]
    front = [nets[i] for i in pareto_front(points, ["maximize", "minimize"])]
    return sorted(round(n.test, 4) for n in front if n.latency <= limit)


def one_seed(study_name: str, seed: int, runs: int) -> None:
    study = load_study(
        study_name,
        {"name": f"{study_name}_seed{seed}", "search.seed": seed, "train.seed": seed,
         "hyperparameters": [], "search.timeout_s": 0, "confirm.top": 0},
    )  # fmt: skip
    setup = prepare(study)
    data = setup.data
    stored = optuna.load_study(study_name=study.name, storage=study.search.storage)
    explored = {}
    for t in stored.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        arch = decode(setup.space, t.params)
        explored.setdefault(arch.id, (arch, t.values[0]))
    nets = []
    candidates = [(k, a, None) for k, a in baselines(
        data.in_channels, data.num_classes, data.resolution).items()]  # fmt: skip
    candidates += [(i[:12], a, v) for i, (a, v) in explored.items()]
    for name, arch, search_val in candidates:
        done = [
            evaluate(arch, data, dataclasses.replace(study.train, seed=1000 * seed + 100 + j),
                     test=True)
            for j in range(runs)
        ]  # fmt: skip
        nets.append(
            Scored(name, setup.predictor.predict(arch), search_val,
                   tuple(r.val_accuracy for r in done), tuple(r.test_accuracy for r in done))
        )  # fmt: skip
    base = {n.name: n for n in nets if n.search_val is None}
    found = [n for n in nets if n.search_val is not None]
    res = base["ResNet-style"]
    faster = [n for n in found if n.latency <= res.latency]
    print(
        f"\n== seed {seed}: {len(found)} networks explored; ResNet-style mean val "
        f"{statistics.mean(res.vals):.4f} test {res.test:.4f}, predicted {res.latency:.3f} ms"
    )
    good = [n for n in faster if n.test >= res.test]
    best = max(faster, key=lambda n: n.test, default=None)
    if best is not None:
        print(
            f"faster than it: {len(faster)}; with mean test >= its: {len(good)}; best "
            f"{best.name} {best.test:.4f}"
        )
    print(
        f"front by the search's training: {faster_front(found, lambda n: n.search_val, res.latency)}"
    )
    for k in (1, 2, 4):
        if k <= runs:
            score = lambda n, k=k: statistics.mean([n.search_val, *n.vals[:k]])  # noqa: E731
            print(
                f"front by the mean of it and {k} more: {faster_front(found, score, res.latency)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--study", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.chdir(args.workdir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for seed in range(args.seeds):
        one_seed(args.study, seed, args.runs)


if __name__ == "__main__":
    main()
