"""The command line: real commands, and one clear line with exit 2 for each bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nas.cli.app import app
from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.model.reference import reference_path

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # Notes of work done and kept may stand above it (a latency table built), a progress
    # bar may not.
    assert not re.search(r": trials .*\d+%", result.stdout), result.stdout
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def write_arch(tmp_path: Path, edit) -> Path:
    data = json.loads(Architecture.from_json(reference_path("mobilenet_v2").read_text()).to_json())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def test_help_lists_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("space", "arch", "export"):
        assert command in result.output


def test_arch_show_totals_equal_cost_model(mobilenet_v2):
    result = run("arch", "show", "mobilenet_v2")
    assert result.exit_code == 0, result.output
    assert "3,504,872 params" in result.output
    assert f"{cost(mobilenet_v2).macs:,} MACs" in result.output
    assert "dwconv 3x3" in result.output


def test_arch_show_json(tmp_path, efficientnet_b0):
    result = run("arch", "show", str(reference_path("efficientnet_b0")), "--json")
    body = json.loads(result.stdout)
    assert body["params"] == 5_288_548
    assert body["id"] == efficientnet_b0.id
    assert body["layers"][0]["out_shape"] == [32, 112, 112]


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (lambda d: d["stages"][2].update(op="conv9"), "stages[2].op", "unknown op 'conv9'"),
        (lambda d: d["stages"][1].update(kernel=4), "stages[1].kernel", "kernel"),
        (lambda d: d["stages"][3].update(out_channels=-8), "stages[3].out_channels", "positive"),
        (lambda d: d["stem"].update(channels=-1), "stem.channels", "positive"),
        (lambda d: d["head"].update(dropuot=0.1), "head.dropuot", "unknown field"),
        (lambda d: d.pop("resolution"), "resolution", "missing"),
        (lambda d: d["stages"][0].update(stride="2"), "stages[0].stride", "integer"),
    ],
)
def test_bad_architecture_file(tmp_path, edit, field, reason):
    path = write_arch(tmp_path, edit)
    result = run("arch", "show", str(path))
    assert_one_line_error(result, str(path), field, reason)


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"resolution": 224,\n "stages": [}')
    assert_one_line_error(run("arch", "show", str(path)), str(path), "malformed JSON", "line 2")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.json"
    assert_one_line_error(run("arch", "show", str(path)), str(path))


def test_console_script_exit_code(tmp_path):
    """The installed `nas` entry point, in a real process."""
    path = write_arch(tmp_path, lambda d: d["stages"][1].update(kernel=4))
    proc = subprocess.run(
        [sys.executable, "-m", "nas", "arch", "show", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "stages[1].kernel" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_space_list_and_show_report_sizes():
    from nas.space.searchspace import list_spaces, load_space, size

    listing = run("space", "list")
    assert listing.exit_code == 0, listing.output
    for name in list_spaces():
        assert name in listing.output
    shown = run("space", "show", "tiny")
    assert shown.exit_code == 0, shown.output
    assert f"size: {size(load_space('tiny'))} distinct architectures" in shown.output
    assert "s0_expansion" in shown.output and "stages[0].op in {ir}" in shown.output


def test_space_sample_writes_a_member(tmp_path):
    from nas.model.arch import load_architecture
    from nas.space.searchspace import contains, load_space

    out = tmp_path / "a.json"
    result = run("space", "sample", "tiny", "--seed", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert contains(load_space("tiny"), load_architecture(out))


def test_unknown_space():
    assert_one_line_error(run("space", "show", "mobil"), "space", "unknown search space 'mobil'")


def test_malformed_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nresolution = [8,\n')
    assert_one_line_error(run("space", "show", str(path)), str(path), "malformed TOML")


def test_bad_kernel_in_space_file(tmp_path):
    path = tmp_path / "k4.toml"
    path.write_text(
        'name = "k4"\nresolution = 8\nnum_classes = 10\n[stem]\nchannels = 8\n'
        '[[stages]]\nop = "conv"\nkernel = [3, 4]\nout_channels = 8\n'
    )
    assert_one_line_error(run("space", "show", str(path)), str(path), "stages[0].kernel", "got 4")


def test_export_command_writes_every_format(tmp_path):
    out = tmp_path / "exports"
    arch = tmp_path / "small.json"
    assert run("space", "sample", "tiny", "--seed", "1", "--out", str(arch)).exit_code == 0
    result = run("export", str(arch), "--out", str(out), "--name", "small")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "small.json", "small.onnx", "small.pt", "small.py", "small.ts"
    ]  # fmt: skip
    # A second export without --force refuses and leaves the files alone.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run("export", str(arch), "--out", str(out), "--name", "small")
    assert_one_line_error(again, "small")
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_export_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "never"
    bad = write_arch(tmp_path, lambda d: d["stages"][1].update(kernel=4))
    assert_one_line_error(run("export", str(bad), "--out", str(out)), "stages[1].kernel")
    assert not out.exists()


def test_export_weights_of_another_architecture(tmp_path, mobilenet_v2):
    import torch

    from nas.model.builder import build

    weights = tmp_path / "mnv2.pt"
    torch.save(build(mobilenet_v2).state_dict(), weights)
    out = tmp_path / "b0"
    result = run("export", "efficientnet_b0", "--out", str(out), "--weights", str(weights))
    assert_one_line_error(result, str(weights), "do not fit")
    assert not out.exists()


# -- nas latency ---------------------------------------------------------------------

# Six architectures: conv at 4/8 channels, ir at 4/8 channels x expansion 1/3.
SIX_NETWORKS = """
name = "micro"
resolution = 8
in_channels = 1
num_classes = 4
[stem]
channels = 4
stride = 1
[[stages]]
op = ["conv", "ir"]
out_channels = [4, 8]
stride = 2
kernel = 3
expansion = [1, 3]
"""


def test_latency_build_predict_export_import(tmp_path):
    from tests.micro import trusting_measurements

    space = tmp_path / "micro.toml"
    space.write_text(SIX_NETWORKS)
    db = f"sqlite:///{tmp_path / 'lat.db'}"
    # Every figure trusted: what a busy machine would refuse as too noisy is chance.
    with trusting_measurements():
        built = run("latency", "build", "--space", str(space), "--db", db, "--calibrate", "5")
    assert built.exit_code == 0, built.output
    assert "calibration on 5 models" in built.output
    arch = tmp_path / "a.json"
    assert run("space", "sample", str(space), "--out", str(arch)).exit_code == 0
    predicted = run("latency", "predict", str(arch), "--db", db)
    assert predicted.exit_code == 0, predicted.output
    assert "ms predicted" in predicted.output
    # Six architectures in the space, five of them calibration models: too few to validate.
    checked = run("latency", "validate", "--space", str(space), "--db", db, "--n", "6")
    assert checked.exit_code == 2 and "Traceback" not in checked.output
    assert "only 1 fresh architecture(s) of micro" in checked.stderr.strip().splitlines()[-1]
    shown = run("latency", "show", "--db", db)
    assert "calibrated" in shown.output and "micro" in shown.output
    page = tmp_path / "latency.html"
    reported = run("latency", "report", "--space", str(space), "--db", db, "--out", str(page))
    assert reported.exit_code == 0, reported.output
    assert reported.stdout.strip() == (
        f"micro on cpu: 1 validation model(s): too few to judge (`nas latency validate`) -> {page}"
    )
    from nas.latency.calibration import calibration_models
    from nas.latency.lut import LatencyTable
    from nas.latency.target import Target, fingerprint

    stored = calibration_models(LatencyTable(db), fingerprint(Target("cpu")).key)
    assert f"calibration models ({len(stored)})" in page.read_text()
    moved = tmp_path / "table.json.gz"
    assert run("latency", "export", str(moved), "--db", db).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = run("latency", "import", str(moved), "--db", other)
    assert imported.exit_code == 0, imported.output
    again = run("latency", "predict", str(arch), "--db", other)
    assert again.stdout.split()[0] == predicted.stdout.split()[0]


def test_latency_bad_inputs(tmp_path):
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    assert_one_line_error(
        run("latency", "predict", "mobilenet_v2", "--target", "tpu", "--db", db),
        "target",
        "unknown latency target 'tpu'",
    )
    assert_one_line_error(
        run("latency", "predict", "mobilenet_v2", "--db", db), "nas latency build"
    )
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00not sqlite" * 64)
    assert_one_line_error(
        run("latency", "show", "--db", f"sqlite:///{garbage}"), "cannot open the latency database"
    )
    assert_one_line_error(
        run("latency", "import", str(tmp_path / "none.json.gz"), "--db", db), "no such file"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is absent")
def test_a_cuda_table_without_cuda_writes_no_database(tmp_path):
    db = tmp_path / "cuda.db"
    for cmd in ("build", "calibrate", "validate"):
        assert_one_line_error(
            run("latency", cmd, "--space", "tiny", "--target", "cuda", "--db", f"sqlite:///{db}"),
            "no CUDA device",
        )
        assert not db.exists(), cmd


def test_latency_noise_reports_the_machines_steadiness():
    import re

    pattern = (
        r"{what} on cpu: (\d+) measurements in \d+ s \((\d+) refused as too noisy\); "
        r"median ([\d.]+|nan) ms, p10-p90 ([\d.]+|nan)-([\d.]+|nan)x of a network's median; "
        r"(?:two measurements of one network agree within \+-5% for (\d+)%, within \+-10% "
        r"for (\d+)% of pairs|no network was measured twice)"
    )
    for args, what in (
        ((), "canary"),
        (("--space", "tiny", "--resolution", "8", "--networks", "2"), "2 networks of tiny@8"),
    ):
        result = run("latency", "noise", "--seconds", "1", *args)
        assert result.exit_code == 0, result.output
        line, verdict = result.stdout.strip().splitlines()
        m = re.fullmatch(pattern.format(what=what), line)
        assert m, line
        assert int(m[1]) + int(m[2]) >= 1
        # A machine too busy to time any network twice says so instead of a share.
        assert m[6] is None or int(m[6]) <= int(m[7]) <= 100
        assert verdict.startswith(("steady enough", "too noisy", "too few"))
    assert_one_line_error(run("latency", "noise", "--seconds", "0"), "--seconds", "positive")
    assert_one_line_error(
        run("latency", "noise", "--space", "tiny", "--networks", "0"), "--networks", "positive"
    )


# -- nas search: bad input ------------------------------------------------------------

MICRO_STUDY = """
name = "micro"
space = "micro.toml"
export_dir = "exports"
[data]
name = "digits"
limit = 300
[train]
epochs = 1
[objective]
mode = "budget"
latency_budget_ms = 0.0001
[search]
trials = 2
storage = "sqlite:///studies.db"
[latency]
db = "sqlite:///latency.db"
"""


def micro_study(tmp_path) -> str:
    (tmp_path / "micro.toml").write_text(
        SIX_NETWORKS.replace("num_classes = 4", "num_classes = 10")
    )
    path = tmp_path / "study.toml"
    path.write_text(MICRO_STUDY)
    return str(path)


def test_search_impossible_budget_is_refused_before_training(tmp_path):
    from tests.micro import trusting_measurements

    study = micro_study(tmp_path)
    # The search builds its latency table first; a busy machine must not refuse it.
    with trusting_measurements():
        result = run("search", study)
    assert_one_line_error(result, "objective.latency_budget_ms", "no architecture of space")
    assert not (tmp_path / "exports").exists()  # nothing trained, nothing exported


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--data-path", "/nonexistent/mnist"], ["path", "does not exist"]),
        (["--storage", "nonsense://x"], ["storage", "invalid database URL"]),
        (["--address", "127.0.0.1:9"], ["search.ray_address", "cannot reach the Ray cluster"]),
    ],
)
def test_search_bad_inputs(tmp_path, args, needles):
    base = [
        "search",
        "mnist",
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
        "--latency-db",
        f"sqlite:///{tmp_path / 'l.db'}",
        "--data-path",
        "../shared/data/mnist",
    ]
    # Later options win: each case overrides one of the defaults above.
    merged = base + args
    assert_one_line_error(run(*merged), *needles)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        # Space/data mismatch: `mobile` is for 32..224 px, digits are 8 px.
        (["--space", "mobile"], ["digits.toml: space", "designed for 32..224 px", "8 px"]),
        (["--space", "nope"], ["space", "nope"]),
        (["--target", "tpu"], ["command line: latency.target", "unknown latency target 'tpu'"]),
    ],
)
def test_search_space_and_target_mismatches(tmp_path, args, needles):
    storage = ["--storage", f"sqlite:///{tmp_path / 's.db'}"]
    latency = ["--latency-db", f"sqlite:///{tmp_path / 'l.db'}"]
    assert_one_line_error(run("search", "digits", *storage, *latency, *args), *needles)


def test_search_unknown_dataset_format(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(
        "search", "mnist", "--data-path", str(empty), "--storage", f"sqlite:///{tmp_path / 's.db'}"
    )
    assert_one_line_error(result, str(empty), "path")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_search_on_a_target_this_machine_lacks_needs_an_imported_table(tmp_path):
    """A CUDA target works from a table built elsewhere; with none, say how to get one."""
    result = run(
        "search",
        "digits",
        "--target",
        "cuda",
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
        "--latency-db",
        f"sqlite:///{tmp_path / 'l.db'}",
    )
    assert_one_line_error(result, "latency.target", "no CUDA device", "nas latency import")


@pytest.mark.slow
def test_ctrl_c_during_a_table_build_keeps_what_was_measured(tmp_path):
    """Ctrl-C while `nas latency build` measures the `tiny` space (3,126 units): exit 130,
    one line saying the same command continues, every unit measured so far stored."""
    import contextlib
    import os
    import signal
    import sqlite3
    import time

    from nas.latency.lut import LatencyTable

    path = tmp_path / "lat.db"
    db = f"sqlite:///{path}"

    def stored() -> int:
        """Units on record, read without a write lock (the store's own transactions take
        one, which would queue the build's writes behind this test's polling)."""
        try:
            with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as c:
                return c.execute("SELECT count(*) FROM latency_entries").fetchone()[0]
        except sqlite3.Error:  # not created yet
            return 0

    # A child inherits an ignored or blocked SIGINT from the process that starts it (a
    # test worker after other tests' libraries ran): this CLI is started with SIGINT as a
    # terminal gives it, and with faulthandler, so a hang shows where the build was.
    main = (
        "import runpy, signal, sys\n"
        "was = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "if signal.SIGINT in was or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:\n"
        "    print('note: SIGINT came ignored or blocked', file=sys.stderr)\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "runpy.run_module('nas', run_name='__main__')\n"
    )
    cmd = ["latency", "build", "--space", "tiny", "--db", db]
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", main, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The first group of units was stored 25-35 s after the start on a quiet 2-core
        # machine, 130-150 s with both cores busy with other work, 270 s at a load
        # average of 14: 1500 s is 5x the worst.
        deadline = time.monotonic() + 1500
        while stored() < 20:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no 20 units stored in 1500 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        try:
            # Exit after Ctrl-C took up to 8 s on the busy machine: 120 s is 15x that.
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = proc.communicate()
            raise AssertionError(f"no exit 120 s after Ctrl-C; its stacks:\n{err}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: the units measured so far are stored in {db}; the same command "
        "continues from there"
    )
    fps = LatencyTable(db).fingerprints()
    assert 20 <= len(LatencyTable(db).entries(fps[0].key)) < 3126
    assert os.path.getsize(path) > 0


@pytest.mark.parametrize(
    ("study", "args", "needles"),
    [
        ("digits", ["--space", "nope"], ["space", "nope"]),
        ("mnist", ["--data-path", "/nowhere/mnist"], ["path", "does not exist"]),
        ("digits", ["--address", "127.0.0.1:9"], ["search.ray_address", "cannot reach"]),
    ],
)
def test_refused_input_leaves_no_database_behind(tmp_path, study, args, needles):
    """A space, a data path or a cluster refused before any work: exit 2, one line, and
    neither the study's storage nor the latency database exists afterwards."""
    storage, latency = tmp_path / "s.db", tmp_path / "l.db"
    result = run(
        "search", study, "--storage", f"sqlite:///{storage}", "--latency-db",
        f"sqlite:///{latency}", "--export-dir", str(tmp_path / "out"), *args,
    )  # fmt: skip
    assert_one_line_error(result, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["report"],
        ["dashboard", "--port", "0"],
    ],
)
def test_reading_a_storage_that_does_not_exist_is_refused_and_creates_nothing(tmp_path, args):
    """Commands that read a stored study: a SQLite file that is not there is one line,
    exit 2, and no empty database is left behind (a path of the study's own, too).
    (`nas proxies` says it has no trained networks there: tests/cli/test_proxies_cli.py.)"""
    missing = tmp_path / "nothing.db"
    result = run(*args, "--storage", f"sqlite:///{missing}")
    assert_one_line_error(result, "command line: --storage", str(missing), "does not exist")
    study = tmp_path / "s.toml"
    study.write_text(f'name = "s"\nspace = "tiny"\n[search]\nstorage = "sqlite:///{missing}"\n')
    command = args[0]
    result = run(command, str(study))
    assert_one_line_error(result, f"{study}: search.storage", "run `nas search` first")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
