"""NAS-Bench-201 in tabular mode: how good is our search stack, against the paper's table?

    python benchmarks/nb201.py [--data ../shared/data/nasbench201] [--seeds 100]
        [--hv-seeds 20] [--device pixel3] [--samplers random,tpe,nsga2,rea,ls]
        [--stack-trials 200] [--per-seed]

A query is one accuracy lookup (it stands for one training run); a trial whose cell is
equivalent to one already evaluated reuses that result and costs no query; latency
comes from the table (as it would from a predictor) and costs no query either.

1. Single objective, CIFAR-10 (study ``nb201_cifar10``): per sampler and seed, trials
   run in process (nas.search.runner.run_inprocess: the same define-by-run sampling,
   representative rows, reuse and recording as on Ray) until 200 queries (at most 600
   trials). The architecture chosen at 50 / 100 / 200 queries is the best cifar10-valid
   validation accuracy among the first 50 / 100 / 200 queries; its CIFAR-10 test
   accuracy is reported. Reading three budgets off one run is exact: no sampler here
   knows how many queries remain (NSGA-II's population follows the fixed trial cap).
2. Hardware-aware (study ``nb201_pixel3`` on ``--device``): validation accuracy up,
   latency down, 100 and 300 queries; hypervolume of the queried rows over that of the
   table's true front, both against the median accuracy and median latency of the
   space (nas.bench.nb201.hypervolume_ratio).
3. Throughput: queries per second in process, and through the full stack (Ray Tune +
   OptunaSearch + SQLite storage), one 200-trial study.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from nas.bench import nb201
from nas.search.config import load_study
from nas.search.results import EvaluationStore
from nas.search.runner import run_inprocess, run_trials
from nas.search.setup import prepare

ROOT = Path(__file__).resolve().parents[1]


def _queried_rows(study_name: str, storage: str) -> list[int]:
    """Rows of the fresh (not reused) lookups of a study, in query order."""
    rows: list[int] = []
    for e in EvaluationStore(storage).of_study(study_name):  # in recording order
        if e.reason.startswith("nasbench201 row "):
            rows.append(int(e.reason.rsplit(" ", 1)[1]))
    return rows


def _run(
    study_file: str, sampler: str, seed: int, args, *, queries: int, cap: int, device: str = ""
) -> list[int]:
    # One in-memory SQLite database per run (Optuna study and evaluations table).
    storage = f"sqlite:///file:nb201-{sampler}-{seed}-{queries}-{device}?mode=memory&cache=shared&uri=true"
    overrides = {"tabular.device": device} if device else {}
    study = load_study(
        study_file,
        {
            **overrides,
            "name": f"nb201-{sampler}-{seed}",
            "tabular.path": args.data,
            "search.sampler": sampler,
            "search.seed": seed,
            "search.trials": cap,
            "search.storage": storage,
            "search.executor": "inprocess",
        },
    )
    run_inprocess(prepare(study), max_queries=queries)
    return _queried_rows(study.name, storage)


def _mean_std(xs: list[float]) -> str:
    return f"{statistics.fmean(xs):.3f} +- {statistics.pstdev(xs):.2f}"


def single_objective(table: nb201.Table, args) -> None:
    val, test = table.val_accuracy, table.test_accuracy("cifar10")
    budgets = args.budgets
    print(
        f"\nsingle objective, CIFAR-10: test accuracy of the best-validation choice, {args.seeds} seeds"
    )
    print(f"{'sampler':8} " + " ".join(f"{b:>17}" for b in budgets) + "   queries/s")
    for sampler in args.samplers:
        got = {b: [] for b in budgets}
        start, n = time.perf_counter(), 0
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            rows = _run("nb201_cifar10", sampler, seed, args, queries=max(budgets), cap=600)
            n += len(rows)
            for b in budgets:
                first = rows[:b]
                got[b].append(float(test[max(first, key=lambda r: val[r])]))
            if args.per_seed:  # to pool runs made in chunks
                print(f"  seed {seed} {sampler} " + " ".join(f"{got[b][-1]:.2f}" for b in budgets))
        rate = n / (time.perf_counter() - start)
        print(
            f"{sampler:8} "
            + " ".join(f"{_mean_std(got[b]):>17}" for b in budgets)
            + f"   {rate:9.0f}",
            flush=True,
        )


def hardware_aware(table: nb201.Table, args) -> None:
    budgets = (100, 300)
    devices = table.devices if args.device == "all" else args.device.split(",")
    print(
        f"\nhardware-aware: hypervolume ratio (found / true front), {args.hv_seeds} seeds; "
        "share = ratio at 300 over the ceiling (every class queried once)"
    )
    print(
        f"{'device':14} {'sampler':8} "
        + " ".join(f"{b:>14}" for b in budgets)
        + f" {'ceiling':>8} {'share mean':>10} {'share min':>9}"
    )
    for device in devices:
        ceiling = nb201.hypervolume_ratio(_representatives(table, device), table, device)
        for sampler in [s for s in args.samplers if s != "rea"]:  # REA is single-objective
            got = {b: [] for b in budgets}
            for seed in range(args.seed_start, args.seed_start + args.hv_seeds):
                rows = _run(
                    "nb201_pixel3",
                    sampler,
                    seed,
                    args,
                    queries=max(budgets),
                    cap=900,
                    device=device,
                )
                for b in budgets:
                    got[b].append(nb201.hypervolume_ratio(rows[:b], table, device))
                if args.per_seed:
                    print(
                        f"  seed {seed} {device} {sampler} "
                        + " ".join(f"{got[b][-1]:.4f}" for b in budgets)
                        + f" ceiling {ceiling:.4f}"
                    )
            shares = [g / ceiling for g in got[300]]
            print(
                f"{device:14} {sampler:8} "
                + " ".join(
                    f"{statistics.fmean(got[b]):.3f} +- {statistics.pstdev(got[b]):.3f}"
                    for b in budgets
                )
                + f" {ceiling:8.3f} {statistics.fmean(shares):10.3f} {min(shares):9.3f}",
                flush=True,
            )


def _representatives(table: nb201.Table, device: str) -> list[int]:
    from nas.bench.tabular import TabularBenchmark

    bench = TabularBenchmark(table, device)
    return sorted({bench.representative(a) for a in table.arch_str})


def full_stack(args) -> None:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/stack.db"
        study = load_study(
            "nb201_cifar10",
            {
                "name": "nb201-stack",
                "tabular.path": args.data,
                "search.sampler": "ls",
                "search.trials": args.stack_trials,
                "search.storage": storage,
                "export_dir": f"{tmp}/exports",
            },
        )
        setup = prepare(study)
        ray.init(
            address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False
        )
        try:
            seconds, errors = run_trials(setup)
        finally:
            ray.shutdown()
        n = len(EvaluationStore(storage).of_study(study.name))
        print(
            f"\nfull stack (Ray Tune + OptunaSearch + SQLite, {os.cpu_count()} CPUs): "
            f"{args.stack_trials} trials, {n} distinct evaluations in {seconds:.1f} s = "
            f"{args.stack_trials / seconds:.1f} trials/s ({len(errors)} errors)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nasbench201"))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--hv-seeds", type=int, default=20)
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (run in chunks)")
    parser.add_argument(
        "--device", default="pixel3", help="hardware-aware: a device, a comma list, or all"
    )
    parser.add_argument("--samplers", default="random,tpe,nsga2,rea,ls")
    parser.add_argument("--stack-trials", type=int, default=200)
    parser.add_argument(
        "--budgets", default="50,100,200", help="single objective: queries to read off"
    )
    parser.add_argument("--per-seed", action="store_true", help="also print each seed's values")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: so,hv,stack")
    args = parser.parse_args()
    args.samplers = args.samplers.split(",")
    args.budgets = tuple(int(b) for b in args.budgets.split(","))
    skip = set(args.skip.split(",")) - {""}
    table = nb201.load_table(args.data)
    if "so" not in skip:
        single_objective(table, args)
    if "hv" not in skip:
        hardware_aware(table, args)
    if "stack" not in skip:
        full_stack(args)


if __name__ == "__main__":
    main()
