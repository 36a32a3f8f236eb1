"""A large NAS-Bench-201 study through Ray: does a trial cost more as the study grows?

    python benchmarks/scale_nb201.py --data ../shared/data/nasbench201 [--trials 10000]
        [--study nb201_pixel3] [--keep DIR [--analyse]] [--profile PREFIX] [--window 100]

Runs the bundled tabular study through the whole stack (Ray Tune on a private local Ray
with this machine's CPUs, OptunaSearch, the study's default sampler, SQLite file
storage in a temporary folder or ``--keep DIR``), then reads the trials' completion
times from Optuna and prints the wall time per trial in windows of ``--window``
trials (trials run concurrently, so a window's cost is the time between its last
completion and the previous window's, over its size). Goal: the window at the last
trial within 2x of the window from trial 100 on.

Then, on that study: how many trials were repeats (a network the study had evaluated
before), the time of ``nas report`` (gathering and writing the page), and of
optuna-dashboard's API (served as ``nas dashboard`` serves it) listing the studies and
the study's trials. ``--profile PREFIX``: cProfile the driver's loop (Tune, OptunaSearch,
the sampler, storage) over trials 100-599 and over the last 500, and print both.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _windows(completions: list[float], size: int) -> list[tuple[int, float]]:
    """(first trial of the window, seconds per trial) for each whole window of ``size``
    completions, in completion order; the first window is timed from the first
    completion."""
    out = []
    for start in range(size, len(completions) + 1, size):
        begin = completions[start - size - 1] if start > size else completions[0]
        n = size if start > size else size - 1
        out.append((start - size, (completions[start - 1] - begin) / n))
    return out


class _Clock:
    """Called in the driver as each trial ends (``run_trials``' ``on_trial``): records the
    wall clock and the driver's CPU time, and with ``profile`` profiles the driver over
    trials 300-799 and over 500 trials near the end (what grows shows as the difference)."""

    def __init__(self, trials: int, profile: str, log: Path) -> None:
        self.trials, self.profile, self.log = trials, profile, log
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.profiler: cProfile.Profile | None = None
        # Windows 100-199 and the last 200 stay unprofiled: they are the ones compared.
        self.spans = ((300, 800, "early"), (max(800, trials - 700), trials - 200, "late"))

    def __call__(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())
        with self.log.open("a") as f:  # a run cut short can still be analysed (--analyse)
            f.write(f"{self.wall[-1]},{self.cpu[-1]}\n")
        if not self.profile:
            return
        n = len(self.wall)
        for first, last, name in self.spans:
            if n == first and self.profiler is None:
                self.profiler = cProfile.Profile()
                self.profiler.enable()
            elif n == last and self.profiler is not None:
                self.profiler.disable()
                self.profiler.dump_stats(f"{self.profile}-{name}.prof")
                self.profiler = None

    def show_profiles(self) -> None:
        for first, last, name in self.spans:
            path = f"{self.profile}-{name}.prof"
            if not Path(path).exists():
                continue
            print(f"\ndriver profile over trials {first}-{last - 1} ({path}), by own time:")
            pstats.Stats(path).sort_stats("tottime").print_stats(15)


def _search(args, tmp: Path):
    import optuna
    import ray

    from nas.core.db import optuna_storage
    from nas.search.config import load_study
    from nas.search.runner import run_trials
    from nas.search.setup import prepare

    storage = f"sqlite:///{tmp}/scale.db"
    study = load_study(
        args.study,
        {
            "tabular.path": args.data,
            "search.trials": args.trials,
            "search.storage": storage,
            "export_dir": str(tmp / "exports"),
        },
    )
    if args.analyse:  # the run in --keep, as far as it got
        clock = _Clock(args.trials, args.profile, tmp / "clock.csv")
        for line in clock.log.read_text().splitlines():
            wall, cpu = line.split(",")
            clock.wall.append(float(wall))
            clock.cpu.append(float(cpu))
        o_study = optuna.load_study(study_name=study.name, storage=optuna_storage(storage))
        return study, o_study.get_trials(deepcopy=False), clock
    setup = prepare(study)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    clock = _Clock(args.trials, args.profile, tmp / "clock.csv")
    try:
        seconds, errors = run_trials(setup, on_trial=clock)
    finally:
        ray.shutdown()
    clock.show_profiles()
    o_study = optuna.load_study(study_name=study.name, storage=optuna_storage(storage))
    trials = o_study.get_trials(deepcopy=False)
    print(
        f"\n{study.name}: {len(trials)} trials in {seconds:.0f} s "
        f"({seconds / max(1, len(trials)):.3f} s per trial overall), {len(errors)} errors, "
        f"sampler {study.search.sampler}, {os.cpu_count()} CPUs"
    )
    return study, trials, clock


def _per_trial(trials, clock: _Clock, size: int) -> None:
    done = sorted(t.datetime_complete.timestamp() for t in trials if t.datetime_complete)
    wins = _windows(done, size)
    cpu = dict(_windows(clock.cpu, size))
    print(
        f"\nper trial, windows of {size} completions: wall seconds (Optuna's completion "
        "times), and the driver's CPU seconds (its process: Tune's loop, OptunaSearch, "
        "the sampler, SQLite)"
    )
    step = max(1, len(wins) // 20)
    for first, cost in wins[::step] + ([wins[-1]] if (len(wins) - 1) % step else []):
        used = f"{cpu[first]:.3f}" if first in cpu else "-"
        print(f"  trials {first:>6}-{first + size - 1:<6} {cost:.3f}  {used}")
    if len(wins) >= 2:
        (first, early), (last, late) = wins[1], wins[-1]
        print(
            f"from trial {first}: {early:.3f} s, from trial {last}: {late:.3f} s per trial; "
            f"ratio {late / early:.2f} (goal <= 2)"
        )
        if first in cpu and last in cpu:
            print(
                f"driver CPU {cpu[first]:.3f} -> {cpu[last]:.3f} s per trial "
                f"(ratio {cpu[last] / cpu[first]:.2f})"
            )
    spans = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in trials
        if t.datetime_complete and t.datetime_start
    ]
    head, tail = spans[size : 2 * size], spans[-size:]
    if head and tail:
        print(
            f"median start-to-complete of one trial: {statistics.median(head):.3f} s "
            f"(trials {size}-{2 * size - 1}), {statistics.median(tail):.3f} s (last {size})"
        )


def _timed(what: str, fn, repeat: int = 3):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    print(
        f"  {what}: {min(times):.2f} s (best of {repeat}; all {', '.join(f'{t:.2f}' for t in times)})"
    )
    return out


def _report(study, tmp: Path) -> None:
    from nas.report.page import write_report
    from nas.report.study import gather, repeats

    print("\nnas report on it:")
    r = _timed("gather (storage -> StudyReport)", lambda: gather(study))
    rep = repeats(r)
    print(
        f"  {rep.trials} finished trials, {rep.networks} distinct networks: "
        f"{rep.repeats} trials were repeats ({rep.reused} networks reused from other studies)"
    )
    page = tmp / "report.html"
    _timed(
        "write_report (gather, figures, page, dashboard figures)", lambda: write_report(study, page)
    )
    print(f"  page: {page.stat().st_size / 1e6:.1f} MB")
    cli = [sys.executable, "-m", "nas", "report", study.name, "--storage", study.search.storage]
    t0 = time.perf_counter()
    done = subprocess.run([*cli, "--out", str(page)], capture_output=True, text=True, check=True)
    print(f"  `nas report` as a command (a fresh process): {time.perf_counter() - t0:.2f} s")
    print(f"  it printed: {done.stdout.strip()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dashboard(study) -> None:
    from nas.core.interrupt import StopRequest
    from nas.report.dashboard import serve

    port, stop, ready = _free_port(), StopRequest(), threading.Event()
    server = threading.Thread(
        target=serve,
        args=(study.search.storage, "127.0.0.1", port),
        kwargs={"on_ready": lambda _: ready.set(), "stop": stop},
        daemon=True,
    )
    server.start()
    ready.wait(60)
    base = f"http://127.0.0.1:{port}/api"

    def get(path: str):
        with urllib.request.urlopen(base + path, timeout=600) as r:
            return json.loads(r.read())

    print("\noptuna-dashboard's API on it (served as `nas dashboard` serves it):")
    try:
        studies = _timed("GET /api/studies", lambda: get("/studies"))
        sid = next(
            s["study_id"] for s in studies["study_summaries"] if s["study_name"] == study.name
        )
        one = _timed(f"GET /api/studies/{sid}?after=0", lambda: get(f"/studies/{sid}?after=0"))
        print(f"  {len(one['trials'])} trials listed")
        n = len(one["trials"])
        _timed(
            f"GET /api/studies/{sid}?after={max(0, n - 10)} (a poll: the last 10)",
            lambda: get(f"/studies/{sid}?after={max(0, n - 10)}"),
        )
    finally:
        stop.set()
        server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of the NAS-Bench-201 tables")
    parser.add_argument("--study", default="nb201_pixel3")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--keep", default="", help="folder for the database (kept)")
    parser.add_argument(
        "--analyse", action="store_true", help="no search: analyse the one kept in --keep"
    )
    parser.add_argument(
        "--profile", default="", help="profile the driver early and late: PREFIX-{early,late}.prof"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.keep or scratch).resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        print(f"load average at the start: {os.getloadavg()}")
        study, trials, clock = _search(args, tmp)
        print(f"load average at the end: {os.getloadavg()}")
        _per_trial(trials, clock, args.window)
        _report(study, tmp)
        _dashboard(study)


if __name__ == "__main__":
    main()
