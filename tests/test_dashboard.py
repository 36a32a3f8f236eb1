"""optuna-dashboard, started for real by `nas dashboard`, serves the study's trials."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

pytest.importorskip("optuna_dashboard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas", "dashboard", str(study_file), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        body = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, "optuna-dashboard did not come up"
        (summary,) = [s for s in body["study_summaries"] if s["study_name"] == "dash"]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=5
        ) as r:
            detail = json.loads(r.read())
        assert len(detail["trials"]) == 3
        assert {a["value"] for t in detail["trials"] for a in t["user_attrs"]} == {
            "arch0",
            "arch1",
            "arch2",
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out
