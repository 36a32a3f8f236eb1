"""Multi-objective successive halving through the real search code, on NAS-Bench-201.

    python benchmarks/moasha_nb201_search.py --data ../shared/data/nasbench201
        [--device pixel3] [--seeds 20] [--trials 100] [--eta 3] [--sampler random]

moasha_nb201.py simulates the halving rule on a random order of networks; this runs the
bundled study ``nb201_pixel3`` (pareto: cifar10-valid validation accuracy up, latency on
--device down) with ``nas.search.runner.run_inprocess`` (the in-process executor: the
study's Optuna sampler, nas.search.trial, the evaluations table), one device, per seed:

- full: early stopping off; every fresh lookup is charged 200 epochs, --trials trials.
- halving: ``[tabular] low_fidelity`` with ``search.halving_eta`` = --eta: every fresh
  lookup is charged 12 epochs and ranked at a 12-epoch rung on the table's 12-epoch
  figure (one seed's CIFAR-10 *test* accuracy: the tables hold no 12-epoch validation
  accuracy, so selection sees the test split here, which a real search must not); the
  ones nas.search.halving promotes are charged 188 more and scored as the full arm's
  are. It runs 4 x --trials trials.

Epochs charged: the ``epochs`` attribute each Optuna trial carries (0 for a network
reused from an earlier trial). Hypervolume: of the complete evaluations' (validation
accuracy, latency) over that of the table's true front, both against the space's median
validation accuracy and median latency (nas.bench.nb201.hypervolume_ratio, metric
"val"); stopped evaluations never count. Reported per seed: the full arm's hypervolume
after its trials and the epochs it paid (B), and the epochs the halving arm paid when it
first reached that hypervolume. Goal: at most B / 2.
"""

from __future__ import annotations

import argparse
import statistics
import time

from nas.bench import nb201
from nas.core.db import optuna_storage
from nas.search.config import load_study
from nas.search.results import EvaluationStore
from nas.search.runner import run_inprocess
from nas.search.setup import prepare


def _curve(study, table, device: str) -> list[tuple[int, float]]:
    """(cumulative epochs, hypervolume ratio) after each trial, in the order they ran."""
    import optuna

    done = {
        e.arch_id: table.index_of(e.arch.cell)
        for e in EvaluationStore(study.search.storage).of_study(study.name)
        if e.status == "complete"
    }
    storage = optuna_storage(study.search.storage)
    trials = optuna.load_study(study_name=study.name, storage=storage).trials
    epochs, rows, hv, curve = 0, set(), 0.0, []
    for t in sorted(trials, key=lambda t: t.number):
        epochs += int(t.user_attrs.get("epochs", 0))
        row = done.get(t.user_attrs.get("arch_id", ""))
        if t.state == optuna.trial.TrialState.COMPLETE and row is not None and row not in rows:
            rows.add(row)
            hv = nb201.hypervolume_ratio(sorted(rows), table, device, metric="val")
        curve.append((epochs, hv))
    return curve


def _arm(args, seed: int, halving: bool, trials: int):
    name = f"moasha_{'halving' if halving else 'full'}_{seed}"
    study = load_study(
        "nb201_pixel3",
        {
            "name": name,
            "tabular.path": args.data,
            "tabular.device": args.device,
            "tabular.low_fidelity": halving,
            "search.early_stopping": halving,
            "search.halving_eta": args.eta,
            "search.sampler": args.sampler,
            "search.seed": seed,
            "search.trials": trials,
            "search.executor": "inprocess",
            # In memory (one SQLite database and one Optuna storage per arm, this process
            # only): no disk writes per trial.
            "search.storage": f"sqlite:///file:{name}?mode=memory&uri=true",
        },
    )
    setup = prepare(study)
    _, errors = run_inprocess(setup)
    if errors:
        raise SystemExit(f"{name}: {errors[0]}")
    return _curve(study, setup.predictor.bench.table, args.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of the NAS-Bench-201 tables")
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--sampler", default="random")
    args = parser.parse_args()
    print(
        f"nb201_pixel3 study, in-process executor; device {args.device}; eta {args.eta}; "
        f"sampler {args.sampler}; full arm {args.trials} trials, halving arm {4 * args.trials}"
    )
    print("seed  full HV   B epochs  halving reaches it at  ratio   halving HV at B/2")
    ratios = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        full = _arm(args, seed, False, args.trials)
        target, budget = full[-1][1], full[-1][0]
        mine = _arm(args, seed, True, 4 * args.trials)
        at = next((e for e, hv in mine if hv >= target - 1e-12), None)
        half = max((hv for e, hv in mine if e <= budget / 2), default=0.0)
        ratio = at / budget if at is not None else float("inf")
        ratios.append(ratio)
        print(
            f"{seed:4d}  {target:7.4f}  {budget:8d}  {at if at else 'never':>21}  "
            f"{ratio:5.2f}   {half:7.4f}"
        )
    print(
        f"epochs to the full arm's final hypervolume, as a fraction of its epochs: median "
        f"{statistics.median(ratios):.2f}, mean {statistics.fmean(ratios):.2f}, worst "
        f"{max(ratios):.2f}; seeds at or under 0.5: {sum(r <= 0.5 for r in ratios)}/{len(ratios)}"
        f" ({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
