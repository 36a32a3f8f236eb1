"""One-shot search against per-trial search on MNIST, end to end, same machine, same clock.

    nice -n 10 python benchmarks/oneshot_search.py --data-path ../shared/data/mnist
        [--seeds 3] [--limit 3000] [--resolution 14] [--trials 100]
        [--supernet-epochs 3] [--workdir DIR]

Per seed, both through `nas.search.pipeline.search` (in process, nsga2, the same space,
data, latency table and seed):

1. one-shot: the supernet trained (sandwich rule), ``--trials`` subnets scored with
   inherited weights (BatchNorm re-estimated, a fixed validation subset), the best 3
   trained 2 more epochs from their inherited weights, the front tested, measured,
   exported. Its wall time W_os is the budget of
2. per-trial: ``search.timeout_s = W_os``, each candidate trained ``--epochs`` epochs
   (its total wall time is W_os plus the scoring of its last front: never less).

Fronts are compared by the hypervolume of (test accuracy, measured latency), both from
``search``'s own front (a member the busy machine would not time keeps its predicted
latency; the count is printed). One reference point for all: accuracy 0 and latency
1.1x the predicted latency of the space's largest network. "Reached at" is when the
one-shot search first had networks whose (test accuracy, predicted latency) front
covers as much as the per-trial search's whole set of trained networks (test accuracy
computed afterwards, untimed, for every network either search evaluated: inherited
subnets through the supernet, trained ones from their weights).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

SPACE = """
name = "bench_mnist"
resolution = [14, 28]
in_channels = 1
num_classes = 10
[stem]
channels = [8, 16]
stride = 1
[head]
channels = [0, 32]
[[stages]]
op = ["conv", "ir", "ds"]
out_channels = [16, 24]
repeats = [1, 2]
stride = 2
kernel = [3, 5]
expansion = [1, 3]
[[stages]]
op = ["ir", "ds"]
out_channels = [24, 32]
repeats = [1, 2]
stride = 2
kernel = [3, 5]
expansion = [1, 3]
"""


def study_for(args, work: Path, method: str, seed: int, timeout_s: float = 0.0, name: str = ""):
    from nas.search.config import load_study

    space = work / "space.toml"
    space.write_text(SPACE)
    name = name or f"{method}-{seed}"
    overrides = {
        "name": name,
        "space": str(space),
        "resolution": args.resolution,
        "export_dir": str(work / name),
        "data.path": args.data_path,
        "data.limit": args.limit,
        "data.seed": 0,
        "train.epochs": args.epochs,
        "train.seed": seed,
        "train.augment": 0.0,
        "train.max_threads": 1,
        "latency.db": f"sqlite:///{work / 'latency.db'}",
        "search.storage": f"sqlite:///{work / f'{name}.db'}",
        "search.executor": "inprocess",
        "search.seed": seed,
        "search.strategy": method,
        "search.trials": args.trials if method == "oneshot" else 10_000,
        "search.timeout_s": timeout_s,
        "confirm.top": 0,
        "supernet.epochs": args.supernet_epochs,
        "supernet.batch_size": 128,
        "supernet.seed": seed,
        "supernet.bn_batches": 4,
        "supernet.val_subset": 0,
        "oneshot.top": 3,
        "oneshot.epochs": 2,
        "hyperparameters": [],  # the bundled study searches lr: not a one-shot thing
    }
    return load_study("mnist", overrides)


@contextlib.contextmanager
def trusting(on: bool) -> Iterator[None]:
    """With ``on``: the table's units and calibration measured in 2 windows of 3 samples,
    every figure kept however far its windows disagree (tests/micro.py does the same)."""
    if not on:
        yield
        return
    from nas.latency import build, canary, timing
    from nas.latency.measure import MeasureSettings

    @dataclasses.dataclass(frozen=True)
    class Trusting(MeasureSettings):
        samples: int = 3
        windows: int = 2
        settle_tolerance: float = math.inf
        floor_tolerance: float = math.inf

    with (
        mock.patch.object(build, "MeasureSettings", Trusting),
        mock.patch.object(timing, "MeasureSettings", Trusting),
        mock.patch.object(canary, "MeasureSettings", Trusting),
    ):
        yield


def created(study) -> dict[tuple[str, str], dt.datetime]:
    """When each row of the study's evaluations table was written, by (study, arch)."""
    from sqlalchemy import select

    from nas.search.results import EvaluationStore, evaluations

    store = EvaluationStore(study.search.storage)
    with store.engine.connect() as conn:
        rows = conn.execute(select(evaluations.c.study, evaluations.c.arch_id,
                                   evaluations.c.created_at))  # fmt: skip
        return {(r.study, r.arch_id): r.created_at for r in rows}


def test_accuracies(study, data, evaluations) -> dict[tuple[str, str], float]:
    """Test accuracy of every evaluated network: an inherited one through the supernet
    (BN re-estimated as when it was scored), a trained one from its weights."""
    from nas.model.builder import load_weights
    from nas.search.oneshot import _supernet
    from nas.search.oneshot_results import is_inherited
    from nas.supernet.scoring import score_subnets
    from nas.train.loop import accuracy

    out = {}
    inherited = [e for e in evaluations if is_inherited(e)]
    if inherited:
        cfg = dataclasses.replace(
            study, oneshot=dataclasses.replace(study.oneshot, checkpoint=_checkpoint(study))
        )
        sn = _supernet(cfg, data).supernet
        r = study.supernet
        on_test = dataclasses.replace(data, val=data.test)
        scores = score_subnets(sn, [e.arch for e in inherited], on_test, bn_batches=r.bn_batches,
                               val_subset=0, batch_size=r.batch_size, seed=r.seed)  # fmt: skip
        out.update({(e.study, e.arch_id): s for e, s in zip(inherited, scores, strict=True)})
    for e in evaluations:
        if e.weights and e.status == "complete":
            model = load_weights(e.arch, e.weights)
            out[(e.study, e.arch_id)] = accuracy(model, data, data.test, e.arch.resolution)
    return out


def _checkpoint(study) -> str:
    from nas.search.setup import supernet_root

    (path,) = supernet_root(study).glob("supernet-*.pt")
    return str(path)


def timeline(
    points: list[tuple[float, float, float]], ref, directions
) -> list[tuple[float, float]]:
    """(time, hypervolume of the (accuracy, latency) points found by then)."""
    from nas.core.pareto import hypervolume_2d

    out, seen = [], []
    for t, acc, lat in sorted(points):
        seen.append((acc, lat))
        out.append((t, hypervolume_2d(seen, ref, directions)))
    return out


def run_seed(args, work: Path, seed: int, ref_latency: list[float]) -> dict:
    from nas.core.objectives import ACCURACY_LATENCY
    from nas.core.pareto import hypervolume_2d
    from nas.search.oneshot_results import finetune_name, is_inherited
    from nas.search.pipeline import search
    from nas.search.results import EvaluationStore
    from nas.search.setup import prepare
    from nas.supernet import largest
    from nas.supernet.spec import SupernetSpec

    notes: list[tuple[float, str]] = []
    out: dict = {"seed": seed}
    results = {}
    for method in ("oneshot", "pertrial"):
        timeout = 0.0 if method == "oneshot" else results["oneshot"][1].seconds
        study = study_for(args, work, method, seed, timeout)
        start = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        t0 = time.perf_counter()
        result = search(study, note=lambda m, t0=t0: notes.append((time.perf_counter() - t0, m)))
        results[method] = (study, result, start)
        print(f"  seed {seed} {method}: {result.seconds:.0f} s, "
              f"{len(result.evaluations)} evaluations", flush=True)  # fmt: skip
    study_os, res_os, start_os = results["oneshot"]
    study_pt, res_pt, start_pt = results["pertrial"]
    setup = prepare(study_pt)
    if not ref_latency:  # one reference for every seed and both methods
        big = largest(SupernetSpec.from_space(setup.space))
        ref_latency.append(1.1 * setup.predictor.predict(big))
    ref = (0.0, ref_latency[0])
    data = setup.data

    def final_hv(result) -> tuple[float, int]:
        pts = [(m.test_accuracy, m.measured_ms if m.measured_ms is not None
                else m.evaluation.latency_ms) for m in result.front]  # fmt: skip
        unmeasured = sum(m.measured_ms is None for m in result.front)
        return hypervolume_2d(pts, ref, ACCURACY_LATENCY), unmeasured

    out["hv_os"], out["unmeasured_os"] = final_hv(res_os)
    out["hv_pt"], out["unmeasured_pt"] = final_hv(res_pt)
    out["wall_os"], out["wall_pt"] = res_os.seconds, res_pt.seconds
    own_os = [e for e in res_os.evaluations if e.study == study_os.name]
    store = EvaluationStore(study_os.search.storage)
    tuned = store.of_study(finetune_name(study_os))
    own_pt = [e for e in res_pt.evaluations if e.status == "complete"]
    out["scored_os"] = sum(is_inherited(e) for e in own_os)
    out["trained_pt"] = len(own_pt)
    scoring = [e.seconds for e in own_os if is_inherited(e)]
    out["score_s"] = statistics.fmean(scoring) if scoring else float("nan")
    times_os = created(study_os)
    first = min(times_os[(e.study, e.arch_id)] for e in own_os)
    out["supernet_s"] = (first - start_os).total_seconds()
    # The timelines: (test accuracy, predicted latency) of what each had found by then.
    acc_os = test_accuracies(study_os, data, own_os + tuned)
    acc_pt = test_accuracies(study_pt, data, own_pt)
    times_pt = created(study_pt)

    def points(evs, accs, times, start):
        return [((times[(e.study, e.arch_id)] - start).total_seconds(),
                 accs[(e.study, e.arch_id)], e.latency_ms)
                for e in evs if (e.study, e.arch_id) in accs]  # fmt: skip

    line_os = timeline(points(own_os + tuned, acc_os, times_os, start_os), ref, ACCURACY_LATENCY)
    line_pt = timeline(points(own_pt, acc_pt, times_pt, start_pt), ref, ACCURACY_LATENCY)
    target = line_pt[-1][1] if line_pt else 0.0
    reached = next((t for t, hv in line_os if hv >= target), None)
    out["timeline_pt"], out["timeline_os"] = target, line_os[-1][1] if line_os else 0.0
    out["reached_s"] = reached
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-path", required=True, help="folder of the MNIST IDX files")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--resolution", type=int, default=14)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2, help="per-trial training epochs")
    p.add_argument("--supernet-epochs", type=int, default=3)
    p.add_argument("--workdir", default="")
    p.add_argument(
        "--trust-latency",
        action="store_true",
        help="build the latency table with every unit figure trusted (a busy machine "
        "never settles: predictions are then rough)",
    )
    args = p.parse_args()
    args.data_path = str(Path(args.data_path).resolve())
    work = Path(args.workdir or tempfile.mkdtemp(prefix="nas-oneshot-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"workdir {work}; MNIST limit {args.limit} at {args.resolution} px; one-shot "
          f"{args.trials} subnets after {args.supernet_epochs} supernet epochs; per-trial "
          f"{args.epochs} epochs each", flush=True)  # fmt: skip
    from nas.search.setup import prepare

    start = time.perf_counter()  # the shared latency table: built once, before any clock
    prepare(
        study_for(args, work, "pertrial", 0, name="warmup"),
        note=lambda m: print(f"  {m}", flush=True),
    )
    print(f"latency table ready in {time.perf_counter() - start:.0f} s", flush=True)
    ref: list[float] = []
    rows = [run_seed(args, work, seed, ref) for seed in range(args.seeds)]
    print(f"reference point: accuracy 0, latency {ref[0]:.3f} ms")
    head = ("seed", "wall os", "wall pt", "scored", "trained", "HV os", "HV pt", "supernet s",
            "score s/net", "reached at", "of wall pt")  # fmt: skip
    print(" | ".join(head))
    for r in rows:
        at = r["reached_s"]
        print(" | ".join([
            str(r["seed"]), f"{r['wall_os']:.0f}", f"{r['wall_pt']:.0f}", str(r["scored_os"]),
            str(r["trained_pt"]), f"{r['hv_os']:.4f}", f"{r['hv_pt']:.4f}",
            f"{r['supernet_s']:.0f}", f"{r['score_s']:.3f}",
            "never" if at is None else f"{at:.0f} s",
            "-" if at is None else f"{at / r['wall_pt']:.2f}",
        ]))  # fmt: skip
        if r["unmeasured_os"] or r["unmeasured_pt"]:
            print(f"  seed {r['seed']}: front members left untimed (predicted latency used): "
                  f"one-shot {r['unmeasured_os']}, per-trial {r['unmeasured_pt']}")  # fmt: skip
        print(f"  seed {r['seed']}: timeline HV (test acc, predicted ms): one-shot "
              f"{r['timeline_os']:.4f}, per-trial {r['timeline_pt']:.4f}")  # fmt: skip
    wins = sum(r["hv_os"] >= r["hv_pt"] and r["wall_os"] <= r["wall_pt"] for r in rows)
    ratio = min(r["scored_os"] / max(1, r["trained_pt"]) for r in rows)
    print(f"one-shot >= per-trial hypervolume in no more wall time: {wins} of {len(rows)} seeds; "
          f"scored at least {ratio:.1f}x the networks")  # fmt: skip


if __name__ == "__main__":
    main()
