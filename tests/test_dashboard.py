"""optuna-dashboard, started for real by `nas dashboard`, serves the study's trials."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest

pytest.importorskip("optuna_dashboard")

ROOT = Path(__file__).resolve().parents[1]
NB201 = ROOT.parent / "shared" / "data" / "nasbench201"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(study_file) -> Iterator[Callable[[str], dict]]:
    """`nas dashboard STUDY` started for real; yields a GET of its JSON API."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas", "dashboard", str(study_file), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )

    def get(path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{path}", timeout=5) as r:
            return json.loads(r.read())

    try:
        deadline = time.time() + 60
        while True:
            try:
                get("studies")
                break
            except OSError:
                assert time.time() < deadline, "optuna-dashboard did not come up"
                time.sleep(0.5)
        yield get
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out


def trials_of(get: Callable[[str], dict], name: str) -> list[dict]:
    (summary,) = [s for s in get("studies")["study_summaries"] if s["study_name"] == name]
    return get(f"studies/{summary['study_id']}")["trials"]


def test_dashboard_shows_the_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(
        study_name="dash", storage=storage, directions=["maximize", "minimize"]
    )
    for k in range(3):
        trial = study.ask()
        trial.set_user_attr("arch_id", f"arch{k}")
        study.tell(trial, [0.9 + k / 100, 1.0 - k / 10])
    study_file = tmp_path / "dash.toml"
    study_file.write_text(f'name = "dash"\n[search]\nstorage = "{storage}"\n')
    with dashboard(study_file) as get:
        trials = trials_of(get, "dash")
    assert len(trials) == 3
    assert {a["value"] for t in trials for a in t["user_attrs"]} == {"arch0", "arch1", "arch2"}


@pytest.mark.skipif(not NB201.is_dir(), reason=f"NAS-Bench-201 tables not found at {NB201}")
def test_a_tabular_search_on_ray_shows_in_the_dashboard(tmp_path):
    """`nas search` of the hardware-aware NB201 study through Ray Tune, then its trials,
    with their architectures and both objectives, in the running dashboard."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study_file = tmp_path / "nb201.toml"
    study_file.write_text(
        (ROOT / "studies" / "nb201_pixel3.toml")
        .read_text()
        .replace("../shared/data/nasbench201", str(NB201))
        .replace("sqlite:///nas_studies.db", storage)
        .replace("trials = 300", "trials = 16")
    )
    done = subprocess.run(
        [sys.executable, "-m", "nas", "search", str(study_file)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "study nb201_pixel3: " in done.stdout  # equivalent cells share evaluations
    # The CIFAR-10 study, named by its path in the repository (its tables path is then
    # relative to the working directory, as for `nas search nb201_cifar10`), same storage.
    done = subprocess.run(
        [
            *(sys.executable, "-m", "nas", "search", "studies/nb201_cifar10.toml"),
            *("--trials", "12", "--executor", "inprocess", "--storage", storage),
            *("--export-dir", str(tmp_path / "exports")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Each search wrote its report beside its front (cells are blocks of the `cell` op).
    for page in (tmp_path / "exports" / "nb201_pixel3", tmp_path / "exports"):
        assert (page / "report.html").read_text().count("Plotly.newPlot") == 3
    with dashboard(study_file) as get:
        trials = trials_of(get, "nb201_pixel3")
        single = trials_of(get, "nb201_cifar10")
        ids = {s["study_name"]: s["study_id"] for s in get("studies")["study_summaries"]}
        pixel3, cifar10 = (get(f"studies/{ids[n]}") for n in ("nb201_pixel3", "nb201_cifar10"))
    assert len(trials) == 16 and len(single) == 12
    # The objectives by name, and the report's figures on the study's page.
    assert pixel3["objective_names"] == ["accuracy", "latency"]
    assert cifar10["objective_names"] == ["objective"]
    graphs = {g["id"]: json.loads(g["graph_object"]) for g in pixel3["plotly_graph_objects"]}
    assert set(graphs) == {"nas-tradeoff", "nas-progress", "nas-ops"}
    # Its front (from our evaluations) is the one Optuna finds among the trials' values.
    front = next(t for t in graphs["nas-tradeoff"]["data"] if t["name"].startswith("front"))
    best = {(t["values"][1], t["values"][0]) for t in pixel3["best_trials"]}
    assert set(zip(front["x"], front["y"], strict=True)) == best
    assert all(t["state"] == "Complete" and len(t["values"]) == 2 for t in trials)
    assert all(t["state"] == "Complete" and len(t["values"]) == 1 for t in single)
    attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials + single]
    assert all("cell" in a["arch"] for a in attrs)
