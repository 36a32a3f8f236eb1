"""Drivers that die or meet: real `nas search` processes on one study's storage.

A driver killed outright (SIGKILL: no handler runs) leaves trials RUNNING in Optuna; a
second driver of a running study is refused in one line (nas.search.lease); the next run
settles what the dead one left (nas.search.settle) and reuses its finished trainings.
Every wait polls the storage, read-only, for the state it needs: no sleep stands in for
a synchronisation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from nas.search.results import EvaluationStore
from nas.search.runner import DIED
from tests.conftest import ROOT
from tests.micro import micro_latency_db, write_micro_space

pytestmark = pytest.mark.slow


def study_file(tmp_path: Path, storage: str) -> Path:
    """A study that would run for hours (1000 trials): it ends when the test kills it."""
    path = tmp_path / "crash.toml"
    path.write_text(
        f"""
name = "crash"
space = "{write_micro_space(tmp_path)}"
export_dir = "{tmp_path / "exports"}"
[data]
dataset = "digits"
limit = 600
[train]
epochs = 3
[objective]
mode = "pareto"
metrics = ["accuracy", "latency"]
[latency]
target = "cpu"
db = "{micro_latency_db(tmp_path)}"
[search]
sampler = "random"
seed = 0
trials = 1000
max_concurrent = 2
storage = "{storage}"
[confirm]
top = 0
"""
    )
    return path


def trial_states(url: str, study: str) -> list[str]:
    """The study's trial states by number, read with plain SELECTs (nothing created)."""
    engine = create_engine(url)
    query = text(
        "SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = :name ORDER BY t.number"
    )
    try:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(query, {"name": study})]
    except DBAPIError:  # the driver has not created Optuna's tables yet
        return []
    finally:
        engine.dispose()


def nas_search(study: Path, executor: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "nas", "search", str(study), "--executor", executor,
            "--live-report", "0", *more]  # fmt: skip


@pytest.mark.parametrize(
    ("executor", "kind"), [("inprocess", "sqlite"), ("ray", "sqlite"), ("inprocess", "postgresql")]
)
def test_a_second_driver_is_refused_and_a_killed_ones_trials_are_settled(
    tmp_path, request, executor, kind
):
    storage = (
        f"sqlite:///{tmp_path / 'studies.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    study = study_file(tmp_path, storage)
    # Ray's sockets live under RAY_TMPDIR, whose path must stay short (a socket path
    # has at most 107 bytes): a folder of /tmp's own, not one under pytest's tmp_path.
    ray_tmp = tempfile.mkdtemp(prefix="nas-crash-")
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": ray_tmp}
    first = subprocess.Popen(
        nas_search(study, executor),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        # Start-up (data, a private Ray) and one trial of 3 epochs: about 40 s with both
        # cores busy with other work; 300 s is 7x that.
        deadline = time.monotonic() + 300
        while not {"COMPLETE", "RUNNING"} <= set(trial_states(storage, "crash")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "no trial finished and none ran in 300 s"
            time.sleep(0.2)

        # A second driver of the running study: refused in one line, exit 2. Its start-up
        # took about 15 s on the busy machine; 300 s is 20x that.
        second = subprocess.run(
            nas_search(study, executor, "--trials", "2"),
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert "study crash is being searched by another driver" in line
        assert f"pid {first.pid}" in line
        assert first.poll() is None  # the first one runs on, untouched

        os.kill(first.pid, signal.SIGKILL)  # the driver alone, as the OOM killer would
        first.wait(timeout=60)  # reaped at once; 60 s for a stalled machine
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever of its Ray is left
            os.killpg(first.pid, signal.SIGKILL)
    before = optuna.load_study(study_name="crash", storage=storage).trials
    cut = [t.number for t in before if t.state.name == "RUNNING"]
    assert cut  # killed as trials ran: without a driver they stay RUNNING
    store = EvaluationStore(storage)
    trained = {e.arch_id: e for e in store.of_study("crash") if e.status == "complete"}
    assert trained
    written = {a: os.stat(e.weights).st_mtime_ns for a, e in trained.items()}

    # The next run: the same sampler and seed propose the killed run's first networks
    # again. Two trials: about 60 s on the busy machine; 600 s is 10x that.
    rerun = subprocess.run(
        nas_search(study, executor, "--trials", "2"),
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
        start_new_session=True,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "its previous driver" in rerun.stdout + rerun.stderr  # said, not silent
    after = optuna.load_study(study_name="crash", storage=storage).trials
    assert not [t.number for t in after if t.state.name in ("RUNNING", "WAITING")]
    for n in cut:  # failed with the reason, or complete when its training had finished
        t = after[n]
        assert (t.state.name, t.user_attrs.get("abandoned")) == ("FAIL", DIED) or (
            t.state.name == "COMPLETE" and DIED in t.user_attrs["settled"]
        ), (t.state, t.user_attrs)
    new = after[len(before) :]
    assert len(new) == 2 and all(t.state.name == "COMPLETE" for t in new)
    reused = {t.user_attrs["arch_id"] for t in new} & trained.keys()
    assert reused  # proposed again, and not trained again: its weights were not rewritten
    assert all(os.stat(trained[a].weights).st_mtime_ns == written[a] for a in reused)
    assert not [e for e in store.of_study("crash") if e.status == "running"]


def running_rows(url: str, study: str) -> list[tuple[str, int, str]]:
    """The study's trainings under way (arch id, epoch, when recorded), read-only."""
    engine = create_engine(url)
    query = text(
        "SELECT arch_id, epochs, created_at FROM nas_evaluations "
        "WHERE study = :name AND status = 'running'"
    )
    try:
        with engine.connect() as conn:
            return [(r[0], int(r[1]), str(r[2])) for r in conn.execute(query, {"name": study})]
    except DBAPIError:  # no table yet
        return []
    finally:
        engine.dispose()


def trial_workers(driver: int) -> set[int]:
    """Ray worker processes of the driver ``driver`` that run a Tune function trial."""
    parents: dict[int, int] = {}
    titles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            titles[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # ended while listed
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def under(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == driver:
                return True
        return False

    return {p for p, title in titles.items() if "ImplicitFunc" in title and under(p)}


def wait_for(what: str, found, proc: subprocess.Popen, timeout_s: float):
    """Poll ``found()`` until it gives something truthy; the driver must stay alive."""
    deadline = time.monotonic() + timeout_s
    while not (got := found()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.1)
    return got


def test_a_killed_ray_worker_is_tried_again_once_then_its_failure_is_recorded(tmp_path):
    """Two trials one after the other: the first one's worker is killed once (the trial
    runs again and completes), the second one's twice (it fails, with the reason in the
    evaluations table and on the Optuna trial). Each kill waits for the training's
    epoch on record (single objective: every epoch is), then kills the worker process
    that runs it."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = study_file(tmp_path, storage)
    text_ = study.read_text()
    text_ = text_.replace('mode = "pareto"\nmetrics = ["accuracy", "latency"]', 'mode = "accuracy"')
    text_ = text_.replace("epochs = 3", "epochs = 100").replace("trials = 1000", "trials = 2")
    text_ = text_.replace("max_concurrent = 2", "max_concurrent = 1\nearly_stopping = false")
    study.write_text(text_)
    ray_tmp = tempfile.mkdtemp(prefix="nas-crash-")  # short: Ray's socket paths
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": ray_tmp}
    driver = subprocess.Popen(
        nas_search(study, "ray"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
        env=env,
    )
    killed: list[int] = []

    def kill_worker(training: Callable[[str], bool], after: str) -> tuple[str, str]:
        """Once a training that ``training`` accepts (by arch id) has an epoch on record
        later than ``after``, kill the trial worker process not killed yet; returns that
        training's arch id and when its epoch was recorded."""

        def ready():
            fresh = [r for r in running_rows(storage, "crash") if training(r[0]) and r[2] > after]
            workers = trial_workers(driver.pid) - set(killed)
            return fresh and len(workers) == 1 and (fresh[0], workers.pop())

        # Start-up, then an epoch of a (re)started trial: about 40 s on the busy machine
        # at the first, 10 s after a kill; 300 s is 7x that.
        row, pid = wait_for("a trial's worker with an epoch on record", ready, driver, 300)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        return row[0], row[2]

    try:
        once, _ = kill_worker(lambda _: True, "")  # the first trial: tried again, completes
        twice, at = kill_worker(lambda arch: arch != once, "")  # the second one
        kill_worker(lambda arch: arch == twice, at)  # ... and its second try
        # Then the driver ends on its own: about 20 s; 300 s is 15x that.
        _, err = driver.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert driver.returncode == 0, err
    trials = optuna.load_study(study_name="crash", storage=storage).trials
    assert [(t.user_attrs["arch_id"], t.state.name) for t in trials] == [
        (once, "COMPLETE"),
        (twice, "FAIL"),
    ]
    why = trials[1].user_attrs["failed"]
    assert why.startswith("failed twice (tried again once): ")
    by_arch = {e.arch_id: e for e in EvaluationStore(storage).of_study("crash")}
    assert by_arch[once].status == "complete" and by_arch[once].epochs == 100
    assert (by_arch[twice].status, by_arch[twice].reason) == ("failed", why)
