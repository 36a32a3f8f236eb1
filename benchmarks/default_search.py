"""The default `nas search` (digits, no arguments, a clean directory) with the cheap
signals, against the default before them: wall-clock time and the front's test
hypervolume.

    python benchmarks/default_search.py [--seeds 3] [--arms before,now] [--workdir DIR]
        [--arm NAME=KEY=VALUE,KEY=VALUE ...]

Arms: ``now`` is studies/digits.toml as it is; ``before`` is the default before the
cheap signals, the issue's baseline (no early stopping, the 12 best trained twice more;
``BEFORE`` below); ``--arm NAME=search.trials=60,confirm.top=6`` adds a variant of
``now`` (dotted study keys, TOML values). Per seed s, each arm's study is written with
search and training seed s (the data split stays the study's) and run as a user runs it:
``nas search study.toml`` in a clean directory of its own, its latency table built
inside its time (a directory of ``--workdir`` that already holds the same arm's finished
run is read back, not run again). The arms alternate which runs first from seed to
seed, so a machine shared with other work slows them alike; the load average before
each run is printed.

Per run: wall time of the command (and of it, the span of the trials and of the
confirmation runs: the rest is starting up, the latency table, measuring and exporting
the front), trainings (Ray trials and confirmation runs) and
epochs charged, from its evaluations table; its front (front.json). Test hypervolume:
of the front's (test accuracy up, predicted latency down), every latency predicted by
one table (the first run's) so that runs are not compared through their own tables'
timing noise, against the reference point (0.1: chance on ten classes, the slowest
predicted latency of any network any run of that seed evaluated).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from nas.core.db import optuna_storage
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import hypervolume_2d
from nas.search.config import load_study
from nas.search.results import EvaluationStore
from nas.search.setup import prepare

STUDY = Path(__file__).resolve().parents[1] / "studies" / "digits.toml"

#: The default study before the cheap signals (the issue's baseline): every trial trained
#: its full epochs, then the 12 best trained twice more.
BEFORE = {
    "search.early_stopping": False,
    "search.halving_min_epochs": {},
    "confirm.top": 12,
    "confirm.seeds": 2,
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for the study's plain strings
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def _toml(study: dict[str, Any]) -> str:
    """A study dict as TOML: top-level values, then one table per section (a dict inside
    a section as an inline table)."""
    top = [f"{k} = {_toml_value(v)}" for k, v in study.items() if not isinstance(v, dict)]
    tables = [
        f"\n[{k}]\n" + "\n".join(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
        for k, v in study.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top) + "\n" + "\n".join(tables) + "\n"


def _with(study: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``study`` with dotted keys set (an empty dict value removes the key)."""
    out = json.loads(json.dumps(study))
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = out
        for p in path:
            node = node.setdefault(p, {})
        if value == {}:
            node.pop(last, None)
        else:
            node[last] = value
    return out


def _parse_arm(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition("=")
    changes = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        changes[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
    return name, changes


def _run(base: dict[str, Any], seed: int, where: Path) -> dict[str, Any]:
    """``nas search study.toml`` in the clean directory ``where``: its time and results.
    A directory that holds a finished run of the same study (``run.json``, written last)
    is read back instead of run again: arms can be added to a workdir later."""
    study = _with(base, {"search.seed": seed, "train.seed": seed})
    record = where / "run.json"
    if record.is_file() and (where / "study.toml").read_text() == _toml(study):
        seconds, load = (json.loads(record.read_text())[k] for k in ("seconds", "load"))
    else:
        where.mkdir(parents=True)
        (where / "study.toml").write_text(_toml(study))
        load = os.getloadavg()[0]
        began = time.perf_counter()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "nas"), "search", "study.toml"],
            cwd=where,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - began
        (where / "output.txt").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise SystemExit(f"{where}: nas search exited {done.returncode}; see output.txt")
        record.write_text(json.dumps({"seconds": seconds, "load": load}))
    url = f"sqlite:///{where}/nas_studies.db"
    name = study["name"]
    store = EvaluationStore(url)
    every = [e for s in _study_names(url) for e in store.of_study(s)]  # confirmations too
    trainings, epochs = len(every), sum(e.epochs for e in every)
    evaluations = {e.arch_id: e for e in store.of_study(name)}
    export = where / study.get("export_dir", f"exports/{name}") / "front.json"
    front = json.loads(export.read_text())
    return {
        "seconds": seconds,
        "load": load,
        "trainings": trainings,
        "epochs": epochs,
        "front": [(m["test_accuracy"], evaluations[m["arch_id"]].arch) for m in front],
        "evaluated": [e.arch for e in evaluations.values()],
        "where": where,
        "spans": _spans(url, name),
    }


def _spans(url: str, name: str) -> tuple[float, float]:
    """Seconds from the first trial's start to the last one's end: of the study's trials,
    and of its confirmation runs (its other studies in the storage)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(url)
    spans = {True: 0.0, False: 0.0}
    for study in _study_names(url):
        trials = optuna.load_study(study_name=study, storage=storage).trials
        ended = [t for t in trials if t.datetime_complete is not None]
        if ended:
            first = min(t.datetime_start for t in ended)
            last = max(t.datetime_complete for t in ended)
            spans[study == name] += (last - first).total_seconds()
    return spans[True], spans[False]


def _study_names(url: str) -> list[str]:
    """The study and its confirmation sub-studies: every study in the run's storage."""
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(optuna_storage(url))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arms", default="before,now", help="comma-separated: before, now")
    parser.add_argument("--arm", action="append", default=[], help="NAME=KEY=VALUE,...")
    parser.add_argument("--workdir", default="", help="where the runs' directories go (kept)")
    args = parser.parse_args()
    base = tomllib.loads(STUDY.read_text())
    arms = {"before": _with(base, BEFORE), "now": base}
    arms = {a: arms[a] for a in filter(None, args.arms.split(","))}
    for text in args.arm:
        name, changes = _parse_arm(text)
        arms[name] = _with(base, changes)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="nas-default-search-")).resolve()
    print(f"workdir {work}; arms {', '.join(arms)}", flush=True)
    predictor = None
    results: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    for seed in range(args.seeds):
        order = list(arms) if seed % 2 == 0 else list(reversed(arms))
        runs = {a: _run(arms[a], seed, work / f"{a}-seed{seed}") for a in order}
        if predictor is None:  # one table predicts every run's latencies
            first = runs[order[0]]["where"]
            os.chdir(first)
            predictor = prepare(load_study(str(first / "study.toml"))).predictor
        slowest = max(predictor.predict(a) for r in runs.values() for a in r["evaluated"])
        ref = (0.1, slowest)
        for a in arms:
            r = runs[a]
            points = [(acc, predictor.predict(arch)) for acc, arch in r["front"]]
            r["hv"] = hypervolume_2d(points, ref, ACCURACY_LATENCY)
            results[a].append(r)
            print(
                f"seed {seed} {a:>8s}: {r['seconds']:6.0f} s (load {r['load']:.1f}), "
                f"trials {r['spans'][0]:.0f} s, confirmation {r['spans'][1]:.0f} s, "
                f"{r['trainings']} trainings, {r['epochs']} epochs, front of "
                f"{len(points)}, test HV {r['hv']:.4f} (ref {ref[1]:.3f} ms)",
                flush=True,
            )
    print("\narm       median s   mean test HV   per-seed test HV")
    for a, rs in results.items():
        print(
            f"{a:8s} {statistics.median(r['seconds'] for r in rs):9.0f} "
            f"{statistics.mean(r['hv'] for r in rs):14.4f}   "
            + " ".join(f"{r['hv']:.4f}" for r in rs)
        )


if __name__ == "__main__":
    main()
