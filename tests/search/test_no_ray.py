"""Without Ray installed, an in-process search still runs: Ray is imported by the Ray
executor alone (nas.search.executors.ray_tune), only when a study runs on it.

Each check runs in a fresh interpreter where importing ``ray`` fails, as it does where
the package is absent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "nasbench201"

#: Makes ``import ray`` (and any ``ray.*``) fail as if Ray were not installed.
NO_RAY = """
import sys

class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, _NoRay())
"""

#: After the code under test: no Ray module was imported, nor half-imported.
NONE_LOADED = """
loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
assert not loaded, loaded
"""


def run_without_ray(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", NO_RAY + code + NONE_LOADED],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_blocker_blocks(tmp_path):
    done = run_without_ray("import ray\n", tmp_path)
    assert done.returncode != 0 and "blocked by the test" in done.stderr


def test_the_search_modules_import_without_ray(tmp_path):
    code = """
import nas.search.pipeline, nas.search.runner, nas.search.confirm, nas.scale.family
import nas.cli.app
from nas.search.config import load_study
from nas.search.executors import EXECUTORS, executor_class
assert "ray" in EXECUTORS  # listed; its module is imported only when a study runs on it
executor_class("inprocess")
"""
    done = run_without_ray(code, tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not DATA.is_dir(), reason=f"NAS-Bench-201 tables not found at {DATA}")
def test_an_in_process_search_runs_and_writes_its_front(tmp_path):
    """`nas search` end to end, as a user without Ray runs it: a tabular study."""
    args = [
        "search", "nb201_pixel3", "--trials", "20", "--executor", "inprocess",
        "--storage", f"sqlite:///{tmp_path / 's.db'}", "--export-dir", str(tmp_path / "out"),
        "--data-path", str(DATA), "--live-report", "0",
    ]  # fmt: skip
    code = f"""
from nas.cli import app
try:
    app({args!r})
except SystemExit as done:
    assert done.code in (0, None), done.code
"""
    done = run_without_ray(code, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert re.search(r"study nb201_pixel3: \d+ evaluations", done.stdout), done.stdout
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert len(optuna.load_study(study_name="nb201_pixel3", storage=storage).trials) == 20
    front = json.loads((tmp_path / "out" / "front.json").read_text())
    assert front and all(0 < m["test_accuracy"] <= 1 for m in front)
    assert all(Path(m["export"]).is_dir() for m in front)
