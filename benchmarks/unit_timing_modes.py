"""Which way of timing units alone predicts whole networks best?

    python benchmarks/unit_timing_modes.py [--space mobile] [--resolution 64]
        [--target cpu] [--calibrate 150] [--check 150] [--copies-bytes 8388608 ...]

Samples ``calibrate + check`` random networks, times every unit they contain once per
mode (the modes of a group of units interleaved, so a slow stretch of the machine hits
all modes alike), times the networks whole (twice, to show how well the machine repeats
itself), then per mode fits the predictor's calibration on the first networks and checks
it on the others. Modes: ``hot`` (one copy of the unit, run again and again: its weights
stay in the nearest caches) and, per ``--copies-bytes B``, ``cold B`` (calls go round
as many copies of the unit as hold B bytes of weights, 2 to 64, so a copy's weights have
left the nearest caches when it runs again, as a layer's have inside a network).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from nas.latency.anchors import fresh_archs
from nas.latency.measure import Measurement, MeasureSettings, measure_runners
from nas.latency.predictor import Sums, fit_calibration, kendall_tau
from nas.latency.runtimes import Runner, prepare_arch
from nas.latency.target import parse_target
from nas.latency.timing import MODEL_GROUP, UNIT_GROUP, Figure, eps_of
from nas.latency.units import Unit, units_of
from nas.space.searchspace import load_space


def timed(runners: list[Runner], settings: MeasureSettings) -> tuple[list[float], int]:
    """The figure per runner (a refused one's fastest sample too), and how many were
    refused as too noisy."""
    results = measure_runners(runners, settings)
    figures = [r.ms if isinstance(r, Measurement) else r.best.ms for r in results]
    return figures, sum(not isinstance(r, Measurement) for r in results)


def report(name: str, pred: np.ndarray, meas: np.ndarray) -> str:
    err = np.abs(pred - meas) / meas
    return (
        f"{name:<22} within 5%: {np.mean(err <= 0.05):6.1%}  within 10%: "
        f"{np.mean(err <= 0.10):6.1%}  MAPE {np.mean(err):6.2%}  "
        f"tau {kendall_tau(pred, meas):.3f}  (n={len(err)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--calibrate", type=int, default=150)
    parser.add_argument("--check", type=int, default=150)
    parser.add_argument("--copies-bytes", type=int, nargs="*", default=[8 << 20])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--save", help="write every figure to this JSON file")
    args = parser.parse_args()
    target = parse_target(args.target)
    space = load_space(args.space).with_data(resolution=args.resolution)
    eps = eps_of(space)
    archs = list(fresh_archs(space, args.seed, 0, args.calibrate + args.check, set()))
    units: dict[str, Unit] = {}
    for a in archs:
        for u in units_of(a):
            units.setdefault(u.key, u)
    todo = list(units.values())
    modes: dict[str, Callable[[Unit], Runner]] = {"hot": lambda u: Figure(u).runner(target, eps)}
    for budget in args.copies_bytes:
        modes[f"cold {budget >> 20} MB"] = lambda u, b=budget: Figure(u, b).runner(target, eps)
    print(
        f"{len(archs)} networks of {space.name}, {len(todo)} distinct units, modes: {list(modes)}"
    )
    tables: dict[str, dict[str, float]] = {m: {} for m in modes}
    refused = dict.fromkeys(modes, 0)
    start = time.perf_counter()
    for g in range(0, len(todo), UNIT_GROUP):
        part = todo[g : g + UNIT_GROUP]
        for mode, make in modes.items():
            figures, noisy = timed([make(u) for u in part], MeasureSettings.for_ops())
            refused[mode] += noisy
            tables[mode].update((u.key, f) for u, f in zip(part, figures, strict=True))
        print(
            f"  units {g + len(part)}/{len(todo)}  {time.perf_counter() - start:.0f} s", flush=True
        )
    print("  units refused as too noisy (their fastest sample used): " + str(refused))
    passes = []
    for _ in range(2):
        ms, noisy = [], 0
        for g in range(0, len(archs), MODEL_GROUP):
            runners = [prepare_arch(a, target) for a in archs[g : g + MODEL_GROUP]]
            figures, n = timed(runners, MeasureSettings())
            ms += figures
            noisy += n
        passes.append(np.asarray(ms))
        print(f"  networks timed ({noisy} refused)  {time.perf_counter() - start:.0f} s")
    a_ms, b_ms = passes
    if args.save:
        data = {
            "archs": [a.to_json() for a in archs],
            "passes": [p.tolist() for p in passes],
            "tables": tables,
            "calibrate": args.calibrate,
        }
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(data, f)
    print(report("machine repeats itself", a_ms, b_ms))
    cal, chk = slice(0, args.calibrate), slice(args.calibrate, None)
    for mode, table in tables.items():
        sums = [Sums(sum(table[u.key] for u in units_of(a)), len(units_of(a))) for a in archs]
        for label, meas in (("pass 1", a_ms), ("pass 2", b_ms)):
            fit = fit_calibration(sums[cal], meas[cal])
            pred = np.asarray([fit.apply(s) for s in sums])
            print(report(f"{mode}, {label}", pred[chk], meas[chk]) + f"  scale {fit.scale:.3f}")


if __name__ == "__main__":
    main()
