"""Do zero-cost proxies rank `tiny` networks trained on MNIST better than their size?
And does the search's proxy pre-filter buy hypervolume at an equal number of trainings?

    python benchmarks/proxies_mnist.py agreement --data-path DIR [--networks 200]
        [--workers 3] [--workdir /tmp/bench/proxies]
    python benchmarks/proxies_mnist.py prefilter --data-path DIR [--trainings 20]
        [--seeds 3] [--proxy macs --proxy synflow] [--of 8] [--objective pareto|accuracy]
        [--workers 3]

The recipe: the `tiny` space with MNIST resized to 8x8 (1,750 training and 500
validation images of the test split's 10,000), 2 epochs of SGD, one thread a training:
small enough for 200 trainings on a busy 2-core machine. Evaluations are stored
in SQLite studies in ``--workdir``; a rerun reuses every network already trained there.

``agreement``: trains ``--networks`` networks drawn uniformly from the space, then
scores every registered proxy on each (what ``nas proxies STUDY`` does) against their
validation accuracy, with bootstrap intervals.

``prefilter``: NSGA-II searches, plain and with ``[search] prefilter`` (keep 1 of
``--of``, one arm per ``--proxy``), ``--trainings`` trainings each, per seed; prints the
hypervolume of accuracy (up) against parameter count (down), one reference point for all
runs, and each run's best validation accuracy, after half and after all the trainings.
``--objective accuracy``: the same searches for accuracy alone (best accuracy only).

They optimise accuracy and parameters (or accuracy), not latency: no latency table is built (on a
busy 2-core machine timing `tiny`'s 3,126 units takes longer than the trainings), and
the stored latency is 0 (not predicted). ``--data-path``: the folder with MNIST's IDX
files (nothing is assumed about where).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

RECIPE = """\
name = "{name}"
space = "tiny"
resolution = 8
export_dir = "exports/{name}"

[data]
name = "mnist"
path = "{data}"
seed = 0
val_fraction = 0.2
test_fraction = 0.1
limit = 2500

[train]
epochs = 2
batch_size = 64
lr = 0.05
schedule = "cosine"
max_threads = 1

[objective]
{objective}

[search]
sampler = "{sampler}"
trials = {trials}
seed = {seed}
executor = "inprocess"
storage = "sqlite:///{workdir}/{name}.db"
{prefilter}
"""


OBJECTIVES = {
    "pareto": 'mode = "pareto"\nmetrics = ["accuracy", "params"]',
    "accuracy": 'mode = "accuracy"',
}


def _study(workdir: Path, name: str, data: str, **kw: object):
    from nas.search.config import load_study

    kw = {"sampler": "random", "trials": 1, "seed": 0, "prefilter": "", **kw}
    kw["objective"] = OBJECTIVES[str(kw.get("objective", "pareto"))]
    path = workdir / f"{name}.toml"
    text = RECIPE.format(name=name, data=data, workdir=workdir, **kw)
    if not path.exists() or path.read_text() != text:  # workers read what the parent wrote
        path.write_text(text)
    return load_study(path)


def _done(study) -> int:
    from nas.search.results import EvaluationStore

    evs = EvaluationStore(study.search.storage).of_study(study.name)
    return len({e.arch_id for e in evs if e.status == "complete"})


class _NoLatency:
    """The plan asks every candidate's latency: none is predicted here (see above)."""

    def predict(self, arch) -> float:
        return 0.0


def _setup(study):
    """What ``nas.search.setup.prepare`` loads, less the latency table."""
    from nas.search.setup import SearchSetup
    from nas.space.searchspace import load_space
    from nas.train.data import load_dataset

    d = study.data
    data = load_dataset(
        d.name, path=d.path, seed=d.seed, val_fraction=d.val_fraction,
        test_fraction=d.test_fraction, limit=d.limit,
    )  # fmt: skip
    space = load_space("tiny").with_data(
        in_channels=data.in_channels, num_classes=data.num_classes, resolution=study.resolution
    )
    return SearchSetup(study, data, space, None, _NoLatency(), study.export_root / ".trials")


def _train_share(workdir: str, data: str, worker: int, workers: int, networks: int) -> int:
    """Worker ``worker`` of ``workers``: train its share of the uniform draws (network i
    is drawn with seed i, so any number of workers trains the same networks)."""
    from nas.model.cost import cost
    from nas.search.trial import run_trial
    from nas.space.searchspace import sample_random

    study = _study(Path(workdir), "proxies_mnist", data)
    setup = _setup(study)
    setup.artifacts.mkdir(parents=True, exist_ok=True)
    for i in range(worker, networks, workers):
        arch = sample_random(setup.space, i)
        c = cost(arch)
        config = {"arch_json": arch.to_json(), "hp": {}, "latency_ms": 0.0,
                  "params": c.params, "macs": c.macs}  # fmt: skip
        run_trial(config, study=study, data=setup.data, artifacts=str(setup.artifacts),
                  report=lambda _: None)  # fmt: skip
        print(".", end="", flush=True)
    return worker


def agreement_cmd(args: argparse.Namespace) -> None:
    from nas.search.proxy_check import check_proxies

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    study = _study(workdir, "proxies_mnist", args.data_path)
    print(f"{_done(study)} of {args.networks} networks stored; training the rest", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [
            pool.submit(_train_share, str(workdir), args.data_path, k, args.workers, args.networks)
            for k in range(args.workers)
        ]
        for job in jobs:
            job.result()
    print(f"\n  {time.perf_counter() - start:.0f} s; {_done(study)} networks stored", flush=True)
    start = time.perf_counter()
    print(f"load average {os.getloadavg()[0]:.1f} before scoring", flush=True)
    result = check_proxies(study, batch_size=64, seed=0, resamples=2000)
    print(f"scored {result.n} networks in {time.perf_counter() - start:.0f} s", end="")
    print(f" (load average {os.getloadavg()[0]:.1f} after)")
    print(f"{'proxy':10s} {'spearman [95% CI]':>26s} {'kendall [95% CI]':>26s} {'ms':>8s}")
    for a in result.rows:
        s, k = a.spearman, a.kendall
        print(
            f"{a.proxy:10s} {s.value:+.3f} [{s.low:+.3f}, {s.high:+.3f}]"
            f"       {k.value:+.3f} [{k.low:+.3f}, {k.high:+.3f}]   {1000 * a.seconds:8.2f}"
        )


def _named(run: tuple[str, int], objective: str) -> tuple[str, str, int]:
    label, seed = run
    mode = "" if objective == "pareto" else f"{objective}_"
    return f"prefilter_{mode}{label.replace('-', '_')}_s{seed}", label, seed


def _search(workdir: str, data: str, name: str, label: str, seed: int, args, labels):
    """One search up to ``args.trainings`` trainings (a stored shorter one is continued:
    NSGA-II reads its population from the study, candidates are seeded by trial number;
    a trial that proposes a network already trained trains nothing, so trials are added
    until the trainings are there); returns each training's (accuracy, params) in order."""
    from nas.search.results import EvaluationStore
    from nas.search.runner import run_inprocess

    def study_of(trials: int):
        return _study(
            Path(workdir), name, data, sampler="nsga2", trials=trials, seed=seed,
            prefilter=labels[label], objective=args.objective,
        )  # fmt: skip

    study = study_of(args.trainings)
    evs = EvaluationStore(study.search.storage).of_study(study.name)
    start = time.perf_counter()
    for _ in range(10):  # each round trains at least one network unless the space is spent
        if len(evs) >= args.trainings:
            break
        run_inprocess(_setup(study_of(args.trainings - len(evs))))
        evs = EvaluationStore(study.search.storage).of_study(study.name)
        print(f" {name}: {len(evs)} trained, {time.perf_counter() - start:.0f} s", flush=True)
    done = [e for e in evs if e.status == "complete"]
    return [(e.val_accuracy, float(e.params)) for e in done][: args.trainings]


def _front(points: list) -> list:
    from nas.core.pareto import pareto_front

    return [points[i] for i in pareto_front(points, ("maximize", "minimize"))]


def prefilter_cmd(args: argparse.Namespace) -> None:
    from nas.core.pareto import hypervolume_2d

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    labels = {"plain": ""}
    for proxy in args.proxy or ["macs", "synflow"]:
        labels[f"{proxy}-1of{args.of}"] = (
            f'prefilter = {{ proxy = "{proxy}", keep = 1, of = {args.of} }}'
        )
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    runs = [(label, seed) for seed in range(args.seeds) for label in labels]
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = {
            run: pool.submit(
                _search, str(workdir), args.data_path, *_named(run, args.objective), args, labels
            )
            for run in runs
        }
        trained = {run: job.result() for run, job in jobs.items()}
    directions = ("maximize", "minimize")
    # One reference point for every run: accuracy 0, 1.1x the largest network trained.
    ref = (0.0, 1.1 * max(p[1] for t in trained.values() for p in t))
    for n in sorted({args.trainings // 2, args.trainings}):
        if args.objective == "pareto":  # accuracy alone has no front to measure
            print(f"after {n} trainings: hypervolume (accuracy x params, reference {ref[1]:.0f})")
            for label in labels:
                hv = [hypervolume_2d(_front(trained[label, s][:n]), ref, directions)
                      for s in range(args.seeds)]  # fmt: skip
                cells = "  ".join(f"{v:9.1f}" for v in hv)
                print(f"  {label:16s} {cells}   mean {statistics.mean(hv):9.1f}")
        print(f"after {n} trainings: best validation accuracy")
        for label in labels:
            best = [max(a for a, _ in trained[label, s][:n]) for s in range(args.seeds)]
            cells = "  ".join(f"{v:.4f}" for v in best)
            print(f"  {label:16s} {cells}   mean {statistics.mean(best):.4f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("agreement", "prefilter"):
        p = sub.add_parser(name)
        p.add_argument("--data-path", required=True, help="folder with MNIST's IDX files")
        p.add_argument("--workdir", default="/tmp/bench/proxies")
        p.add_argument("--workers", type=int, default=3, help="trainings at once")
    sub.choices["agreement"].add_argument("--networks", type=int, default=200)
    pf = sub.choices["prefilter"]
    pf.add_argument("--trainings", type=int, default=20)
    pf.add_argument("--seeds", type=int, default=3)
    pf.add_argument("--proxy", action="append", help="a pre-filter arm (repeatable)")
    pf.add_argument("--of", type=int, default=8)
    pf.add_argument("--objective", choices=sorted(OBJECTIVES), default="pareto")
    args = parser.parse_args()
    {"agreement": agreement_cmd, "prefilter": prefilter_cmd}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
