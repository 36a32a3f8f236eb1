"""How a unit's table figure depends on the window settings: the settings a table used
before (15 samples of at least 1 ms per window) against ``MeasureSettings.for_ops()``,
on the same units, in alternating passes (old, new, old, new), so that each pair of
adjacent passes shares the machine's moment.

    python benchmarks/unit_settings.py [--space tiny] [--resolution 8] [--in-channels 1]
        [--classes 10] [--units 100] [--seed 0]

Per mode (hot; cold too where the space's table has cold figures) and pass: seconds per
figure; then for pairs of passes the median |relative difference| of the figures and
the share within 5% and 10%. Adjacent passes of different settings agreeing as closely
as two passes of the same settings is what says the lighter windows lose nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from nas.latency.canary import Canary
from nas.latency.measure import Measurement, MeasureSettings
from nas.latency.target import Target, fingerprint
from nas.latency.timing import UNIT_GROUP, Figure, eps_of, interleaved
from nas.latency.units import space_units
from nas.space.searchspace import load_space

#: The unit windows tables were built with before ``for_ops`` got lighter.
BEFORE = MeasureSettings(
    samples=15, min_sample_ms=1.0, min_warmup=5, max_warmup_s=1.0, windows=3, figure="fastest"
)


def _pass(figures: list[Figure], target: Target, eps: float, s: MeasureSettings, canary: Canary):
    start = time.perf_counter()
    out: dict[str, float] = {}
    for group in interleaved(
        figures, lambda f: f.runner(target, eps), target, s, UNIT_GROUP, canary
    ):
        for t in group:
            m = t.result if isinstance(t.result, Measurement) else t.result.best
            if m is not None:
                out[t.item.key] = m.ms
    return out, (time.perf_counter() - start) / len(figures)


def _agree(a: dict[str, float], b: dict[str, float]) -> str:
    rel = [b[k] / a[k] - 1 for k in a if k in b]
    share = lambda x: sum(abs(r) <= x for r in rel) / len(rel)  # noqa: E731
    return (
        f"median |diff| {100 * statistics.median(abs(r) for r in rel):.1f}%, "
        f"within 5% {100 * share(0.05):.0f}%, within 10% {100 * share(0.10):.0f}%, "
        f"mean {100 * statistics.fmean(rel):+.1f}%"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--resolution", type=int, default=8)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    space = load_space(args.space).with_data(
        in_channels=args.in_channels, num_classes=args.classes, resolution=args.resolution
    )
    target = Target("cpu")
    fp = fingerprint(target)
    units = space_units(space)
    random.Random(args.seed).shuffle(units)
    units = units[: args.units]
    eps, canary, now = eps_of(space), Canary(target), MeasureSettings.for_ops()
    print(f"{space.name} @ {args.resolution} px: {len(units)} of its units; before: "
          f"{BEFORE.samples} x {BEFORE.min_sample_ms} ms, now: {now.samples} x {now.min_sample_ms} ms")  # fmt: skip
    for mode, cold in (("hot", 0), ("cold", fp.cold_bytes)):
        if mode == "cold" and not cold:
            continue
        figures = [Figure(u, cold) for u in units]
        passes = {}
        for name, s in (("before 1", BEFORE), ("now 1", now), ("before 2", BEFORE), ("now 2", now)):
            passes[name], per = _pass(figures, target, eps, s, canary)
            print(f"  {mode} {name}: {1000 * per:.0f} ms per figure", flush=True)
        for a, b in (("before 1", "before 2"), ("now 1", "now 2"), ("before 1", "now 1"),
                     ("now 1", "before 2"), ("before 2", "now 2")):  # fmt: skip
            print(f"  {mode} {a} vs {b}: {_agree(passes[a], passes[b])}")


if __name__ == "__main__":
    main()
