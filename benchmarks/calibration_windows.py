"""A search's first calibration timed in 18 windows a model against 9: its time, and how
well each calibration predicts the same stored validation networks.

    python benchmarks/calibration_windows.py [--workdir DIR] [--reps 4] [--validation 80]

In --workdir (made if missing) the default study's setup is prepared as `nas search`
prepares it (the `tiny` table for digits built there on a first run). 80 fresh
validation networks are timed once (2 passes, whole-model settings) and kept; then,
--reps times, the arms alternating which goes first, a fresh calibration of 40 models
(as a search's first: seed 100 + rep) with each number of windows, each followed by the
validation of the stored networks under it. Prints per calibration its seconds, its
own fit error, and the validation's MAPE, share within 10% and Kendall tau.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import nas.latency.calibration as calibration
from nas.latency.calibration import calibrate
from nas.latency.lut import LatencyTable
from nas.latency.measure import MeasureSettings
from nas.latency.validation import validate
from nas.search.config import load_study
from nas.search.setup import prepare

#: The whole-model settings a calibration used before: 18 windows.
BEFORE = MeasureSettings()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--validation", type=int, default=80)
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="nas-calibration-windows-")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    study = load_study("digits")
    setup = prepare(study)
    space, target = setup.space, setup.target
    assert target is not None
    table = LatencyTable(study.latency.db)
    t0 = time.perf_counter()
    validate(space, target, table, n=args.validation, seed=7, passes=2)
    print(f"workdir {work}; {args.validation} validation networks timed in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    now = calibration.CALIBRATION_SETTINGS
    arms = {f"{BEFORE.windows} windows": BEFORE, f"{now.windows} windows": now}
    for rep in range(args.reps):
        order = list(arms) if rep % 2 == 0 else list(reversed(arms))
        for name in order:
            calibration.CALIBRATION_SETTINGS = arms[name]
            t0 = time.perf_counter()
            cal = calibrate(space, target, table, n=40, seed=100 + rep, fresh=True)
            seconds = time.perf_counter() - t0
            r = validate(space, target, table, n=args.validation, seed=7, passes=2)
            print(
                f"rep {rep} {name:>10s}: {seconds:5.1f} s, fit MAPE {100 * cal.fit_mape:.2f}%, "
                f"validation MAPE {100 * r.mape:.2f}%, within 10% {100 * r.within_10:.0f}%, "
                f"tau {r.kendall_tau:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
