"""Latency: harness on models of known latency, table keying and persistence, predictor,
and every bad input the issue lists."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import NasError
from nas.latency.anchors import ANCHORS, Anchors
from nas.latency.cold import cold_bytes, cold_copies, cold_key, last_level_cache
from nas.latency.known import BusyWait
from nas.latency.lut import LatencyTable, ModelRecord
from nas.latency.measure import (
    Measurement,
    MeasureSettings,
    NoisyMeasurementError,
    Pacing,
    measure_module,
    measure_runner,
    measure_runners,
)
from nas.latency.predictor import (
    Calibration,
    MissingUnitsError,
    Predictor,
    Sums,
    fit_calibration,
)
from nas.latency.runtimes import Runner, check_available, prepare
from nas.latency.target import Fingerprint, Target, fingerprint, parse_target
from nas.latency.transport import export_table, import_table
from nas.latency.units import space_units, units_of
from nas.latency.workflow import (
    build_table,
    calibrate,
    load_predictor,
    resolve_fingerprint,
    validate,
)
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace, list_spaces, load_space, sample_random

MICRO = {
    "name": "micro",
    "resolution": [8, 12],
    "in_channels": 1,
    "num_classes": 4,
    "stem": {"channels": 4, "stride": 1},
    "head": {"channels": [0, 8]},
    "stages": [
        {
            "op": ["conv", "ir"],
            "out_channels": [4, 8],
            "repeats": [1, 2],
            "stride": 2,
            "kernel": [3, 5],
            "expansion": [1, 3],
        },
        {"op": ["ds", "conv"], "out_channels": 8, "stride": 1, "kernel": 3},
        {"op": ["skip", "ir"], "out_channels": 8, "stride": 1, "kernel": 3, "expansion": 3},
    ],
}


@pytest.fixture
def micro() -> SearchSpace:
    return SearchSpace.from_dict(MICRO, source="micro.toml")


@pytest.fixture
def db(db_url) -> LatencyTable:
    return LatencyTable(db_url)


# -- the harness on latency known by construction -------------------------------------


class ScriptedClock:
    """A runner's clock (nanoseconds) that moves only when a call says how long it took:
    the harness's arithmetic checked on exact figures, whatever else runs on the machine.
    How the harness fares on real timers is benchmarks/harness.py."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns

    def spend(self, ms: float) -> None:
        self.ns += round(ms * 1e6)

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    def runner(self, ms: Callable[[], float], **kw: Any) -> Runner:
        """A runner each of whose calls takes ``ms()`` milliseconds on this clock."""
        return Runner(call=lambda: self.spend(ms()), clock=self, **kw)


@pytest.mark.parametrize("ms", [0.5, 3.0])
def test_harness_recovers_known_latency(ms):
    clock = ScriptedClock()
    m = measure_runner(clock.runner(lambda: ms), MeasureSettings(samples=11), fingerprint_key="k")
    assert m.ms == pytest.approx(ms) and m.floor_gap == 0.0 and m.speed == 1.0
    assert m.samples == 11 * m.windows and m.windows == MeasureSettings().windows
    # Short calls are batched: enough inner calls to last min_sample_ms.
    assert m.inner == int(MeasureSettings().min_sample_ms / ms) + 1
    # Calls that all agree settle after the least warm-up (10 calls per window).
    assert m.warmup == 10 * m.windows
    # Every call is on the clock: first call, warm-up, samples.
    calls = 1 + m.warmup + m.samples * m.inner
    assert m.cost_s == pytest.approx(calls * ms / 1000)
    assert m.fingerprint == "k"


@pytest.mark.parametrize(
    ("figure", "windows", "why"),
    [
        ("fastest", 3, "the fastest samples of the best two of 4 windows"),
        ("median", 6, "the median window floors of the first and the second half of 7 windows"),
    ],
)
def test_noisy_timings_are_refused_not_reported(figure, windows, why):
    # Every call is slower than any before it (1 ms more per 50 ms on the clock): no two
    # windows ever find the same fastest sample, and the later half is always slower.
    clock = ScriptedClock()
    settings = MeasureSettings(
        samples=5, min_sample_ms=0.0, retries=1, max_warmup_s=0.05, windows=windows,
        figure=figure,
    )  # fmt: skip
    with pytest.raises(NoisyMeasurementError) as info:
        measure_runner(clock.runner(lambda: 1 + 20 * clock.seconds), settings)
    assert f"did not settle: {why} differ by" in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.best is not None and info.value.best.windows == windows + 1


def test_figures_from_known_window_floors():
    """The median of the floors and its halves' gap, or the fastest and the gap to the
    second fastest, from floors set by hand."""
    from nas.latency.measure import _Windows

    w = _Windows(Runner(call=lambda: None), MeasureSettings())
    w.raw_floors = [5.0, 1.0, 3.0, 2.0, 4.0, 9.0]
    assert w.floors == w.raw_floors and w.figure == 3.5  # (3 + 4) / 2
    assert w.gap == pytest.approx((4.0 - 3.0) / 3.0)  # halves [5, 1, 3] and [2, 4, 9]
    w.raw_floors.append(3.0)  # 7 windows: halves [5, 1, 3] and [4, 9, 3], 2.0 left out
    assert w.figure == 3.0 and w.gap == pytest.approx((4.0 - 3.0) / 3.0)
    fast = _Windows(Runner(call=lambda: None), MeasureSettings.for_ops())
    fast.raw_floors = [5.0, 1.0, 3.0, 1.2]
    assert fast.figure == 1.0 and fast.gap == pytest.approx(0.2)
    # Paced: each floor divided by its round's speed (rounds 0, 1, 1, 2).
    fast.rounds, fast.speeds = [0, 1, 1, 2], [5.0, 0.5, 1.0]
    assert fast.floors == [1.0, 2.0, 6.0, 1.2]
    assert fast.figure == 1.0 and fast.gap == pytest.approx(0.2)
    with pytest.raises(NasError, match="unknown figure 'mean'"):
        measure_runners([Runner(call=lambda: None)], MeasureSettings(figure="mean"))


def test_the_figure_is_the_fastest_sample_once_two_windows_agree():
    # Contention only slows a call: 3 ms while "busy" (the first 40 calls), 1 ms after.
    # Each window is 10 warm-up calls and 5 samples (the first window one call more):
    # windows 1-2 are busy, 3 quiet; their floors (3, 3, 1 ms) disagree, so a 4th is
    # taken, quiet again: two agree on 1 ms, though the median of all samples is ~2 ms.
    calls = {"n": 0}

    def busy_then_quiet() -> float:
        calls["n"] += 1
        return 3.0 if calls["n"] <= 40 else 1.0

    settings = MeasureSettings(
        samples=5, min_sample_ms=0.0, min_warmup=5, settle_tolerance=10.0, floor_tolerance=0.25,
        windows=3, figure="fastest",
    )  # fmt: skip
    m = measure_runner(ScriptedClock().runner(busy_then_quiet), settings)
    assert calls["n"] == 4 * (10 + 5) + 1
    assert m.windows == 4
    assert m.ms == pytest.approx(1.0) and m.median_ms > 1.5
    assert m.floor_gap <= settings.floor_tolerance


def test_pacing_takes_a_rounds_slowdown_out_of_the_figure():
    """A machine that runs twice as slow in every other round. The pacer (2 ms when fast,
    the reference) sees it, so the model's figure is its fast 3 ms and trusted; paced by
    a pacer that claims every round ran at reference speed, the halves of the model's
    windows disagree (fast, slow, fast | slow, fast, slow) and it is refused."""
    import contextlib

    state = {"round": 0}
    clock = ScriptedClock()  # one machine: the pacer's and the model's calls share it

    def slowed(ms: float) -> Callable[[], float]:
        return lambda: ms * (2 if state["round"] % 2 else 1)

    @contextlib.contextmanager
    def last_of_round():  # the pacer takes the last window of every round
        yield
        state["round"] += 1

    seen: list[int] = []

    def speeds(floors: list[list[float]]) -> list[float]:
        (pacer,) = floors
        seen.append(len(pacer))
        return [f / min(pacer) for f in pacer]

    settings = MeasureSettings(
        samples=5, min_sample_ms=0.0, min_warmup=2, settle_window=1, floor_tolerance=0.1,
        retries=0,
    )  # fmt: skip
    pacer = clock.runner(slowed(2.0), session=last_of_round)
    model = clock.runner(slowed(3.0))
    (m,) = measure_runners([model], settings, pacing=Pacing([pacer], speeds))
    assert isinstance(m, Measurement) and seen == [settings.windows]
    assert m.ms == pytest.approx(3.0) and m.floor_gap == 0.0
    assert m.speed == pytest.approx(1.5)  # the median round: (1 + 2) / 2
    flat = Pacing([pacer], lambda floors: [1.0] * len(floors[0]))
    (refused,) = measure_runners([clock.runner(slowed(3.0))], settings, pacing=flat)
    assert isinstance(refused, NoisyMeasurementError)
    assert refused.best.floor_gap > 0.5 and refused.best.speed == 1.0


def test_windows_of_a_group_are_interleaved():
    log: list[str] = []
    runners = [Runner(call=lambda name=name: log.append(name)) for name in "ab"]
    settings = MeasureSettings(samples=3, min_sample_ms=0.0, min_warmup=2, settle_window=1)
    results = measure_runners(runners, settings)
    assert len(results) == 2
    runs = [name for i, name in enumerate(log) if i == 0 or log[i - 1] != name]
    # Each window stays on one runner; rounds alternate (more rounds while floors disagree).
    assert runs[:6] == ["a", "b", "a", "b", "a", "b"]


def test_measurement_statistics_are_consistent():
    """The real path (a module prepared for its target, real timers): what it reports, not
    how fast (figures on real timers: benchmarks/timing_checks.py)."""
    m = measure_module(BusyWait(0.3), (1, 2, 2), Target("cpu"), MeasureSettings(samples=9))
    assert m.ms > 0 and m.samples == 9 * m.windows >= 9 * MeasureSettings().windows
    assert m.fingerprint == fingerprint(Target("cpu")).key
    assert m.iqr_ms >= 0 and m.std_ms >= 0
    assert m.rel_iqr == pytest.approx(m.iqr_ms / m.median_ms)
    assert m.cv == pytest.approx(m.std_ms / m.mean_ms)


def test_onnxruntime_runner_computes_the_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    runner = prepare(model, (1, 3, 8, 8), Target("onnxruntime-cpu"))
    (out,) = runner.call()
    assert out.shape == (1, 4, 8, 8)


class _Counting(nn.Module):
    """Counts its calls (a copy counts its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x)


def test_copies_take_turns():
    module = _Counting()
    runner = prepare(module, (1, 2, 4, 4), Target("cpu"), copies=3)
    with runner.session():
        for _ in range(7):
            runner.call()
    # The runner holds the copies; the first is the module itself.
    assert module.calls == 3
    with pytest.raises(NasError, match="copies: must be a positive integer"):
        prepare(module, (1, 2, 4, 4), Target("cpu"), copies=0)


def test_cold_copies_hold_the_budget():
    conv = nn.Conv2d(64, 64, 3, bias=False)  # 64*64*9 floats = 147,456 bytes
    assert cold_copies(conv, 1 << 20) == 8  # ceil(1,048,576 / 147,456) = 7.1 -> 8
    assert cold_copies(conv, 1) == 2  # always at least two: calls alternate
    assert cold_copies(nn.ReLU(), 48 << 20) == 64  # no weights: capped
    llc = last_level_cache()
    assert cold_bytes("torch", "cpu") == (llc * 3 // 2 if llc else 48 << 20)
    assert cold_bytes("torch", "cuda") == cold_bytes("onnxruntime", "cpu") == 0
    assert fingerprint(Target("cpu")).cold_bytes == cold_bytes("torch", "cpu")
    assert fingerprint(Target("onnxruntime-cpu")).cold_bytes == 0


def test_onnxruntime_copies_are_sessions_of_one_graph():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    runner = prepare(model, (1, 3, 8, 8), Target("onnxruntime-cpu"), copies=2)
    first, second = runner.call(), runner.call()
    assert first[0].shape == (1, 4, 8, 8)
    np.testing.assert_array_equal(first[0], second[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "options", [{}, {"amp": True, "dtype": "float16"}, {"channels_last": True}]
)
def test_cuda_measurement(options):  # pragma: no cover - GPU machines only
    m = measure_module(nn.Conv2d(16, 16, 3, padding=1), (16, 32, 32), Target("cuda", **options))
    assert m.median_ms > 0


# -- targets and fingerprints ---------------------------------------------------------


def test_fingerprint_records_the_setting():
    fp = fingerprint(Target("onnxruntime-cpu", threads=2))
    assert fp.runtime == "onnxruntime" and fp.threads == 2 and fp.onnxruntime
    assert fp.torch == torch.__version__ and fp.cores >= 1 and fp.processor
    assert Fingerprint.from_json(fp.to_json()) == fp
    keys = {
        fingerprint(t).key
        for t in (
            Target("cpu"),
            Target("cpu", batch=8),
            Target("cpu", threads=2),
            Target("onnxruntime-cpu"),
        )
    }
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: parse_target("tpu"), "target"),
        (lambda: Target("cpu", batch=0), "batch"),
        (lambda: Target("cpu", dtype="int8"), "dtype"),
        (lambda: Target("cpu", amp=True), "target"),
        (lambda: Target("onnxruntime-cpu", dtype="bfloat16"), "dtype"),
    ],
)
def test_bad_targets(make, field):
    with pytest.raises(NasError) as info:
        make()
    assert info.value.field == field


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_target_without_gpu_is_refused():
    with pytest.raises(NasError, match="no CUDA device"):
        check_available(Target("cuda"))


def test_runtime_not_installed(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "onnxruntime":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(NasError, match=r"needs onnxruntime.*nas\[export\]"):
        check_available(Target("onnxruntime-cpu"))


# -- units ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_spaces())
def test_space_units_cover_every_sample(name):
    space = load_space(name)
    if name == "mobile":
        space = space.with_data(resolution=64)
    keys = {u.key for u in space_units(space)}
    rng = np.random.default_rng(3)
    for _ in range(100):
        arch = sample_random(space, rng)
        units = units_of(arch)
        assert len(units) == arch.num_blocks + 2
        assert {u.key for u in units} <= keys


def test_space_units_are_exactly_the_reachable_ones(micro):
    """Brute force: the union of units over every architecture of a small space."""
    from nas.space.searchspace import decode, dimensions

    dims = dimensions(micro)
    seen: set[str] = set()

    def rec(params, i):
        if i == len(dims):
            try:
                arch = decode(micro, params)
            except NasError:
                return
            seen.update(u.key for u in units_of(arch))
            return
        for c in dims[i].choices:
            rec({**params, dims[i].label: c}, i + 1)
        rec(params, i + 1)  # inactive dimensions are left out

    rec({}, 0)
    assert seen == {u.key for u in space_units(micro)}


def test_unit_key_names_shapes(mobilenet_v2):
    units = units_of(mobilenet_v2)
    assert units[0].key == "conv-in:3x224x224-out:32x112x112-k3-s2-e1-d1-se0-relu6"
    assert units[2].key.startswith("ir-in:16x112x112-out:24x56x56-k3-s2-e6")
    assert units[-1].key == "head-in:320x7x7-c1280-n1000-relu6"


# -- table: keying and persistence ---------------------------------------------------


def _m(ms: float, speed: float = 1.0) -> Measurement:
    return Measurement(
        ms=ms, floor_gap=0.01, median_ms=ms, iqr_ms=0.01, mean_ms=ms, std_ms=0.01,
        samples=33, inner=1, windows=3, warmup=10, cost_s=0.1, speed=speed,
    )  # fmt: skip


def _other_machine(fp: Fingerprint, **changes) -> Fingerprint:
    import dataclasses

    return dataclasses.replace(fp, **{"processor": "Some Phone SoC", "cores": 8, **changes})


def test_entries_are_keyed_by_fingerprint_and_persist(db_url):
    url = db_url
    a = fingerprint(Target("cpu"))
    b = fingerprint(Target("onnxruntime-cpu"))
    t = LatencyTable(url)
    for fp in (a, b):
        t.register(fp)
    t.add_entry(a.key, "conv-x", _m(1.0))
    t.add_entry(b.key, "conv-x", _m(0.25))
    t.add_entry(a.key, "conv-x", _m(1.5))  # re-measured: replaced, not duplicated
    again = LatencyTable(url)  # a new process would see the same
    assert again.entries(a.key) == {"conv-x": 1.5}
    assert again.entries(b.key) == {"conv-x": 0.25}
    assert {f.key for f in again.fingerprints()} == {a.key, b.key}


def test_export_import_round_trip(tmp_path, db):
    fp = fingerprint(Target("cpu"))
    db.register(fp)
    for k in range(5):
        db.add_entry(fp.key, f"u{k}", _m(0.1 * (k + 1)))
    db.add_model(fp.key, "calibration", ModelRecord("id1", "tiny", "{}", 2.0, 0.1, 0.3))
    db.save_calibration(fp.key, "tiny", Calibration(1.1, 0.001, 0.01, 7, 0.02).to_dict())
    db.add_validation(fp.key, "tiny", {"within_10": 0.97})
    path = tmp_path / "table.json.gz"
    counts = export_table(db, fp.key, path)
    assert counts == {"entries": 5, "models": 1, "calibrations": 1, "validations": 1}
    other = LatencyTable(f"sqlite:///{tmp_path / 'other.db'}")
    got_fp, got = import_table(other, path)
    assert got_fp == fp and got == counts
    assert other.entries(fp.key) == db.entries(fp.key)
    assert (
        other.calibrations(fp.key)
        == db.calibrations(fp.key)
        == {"tiny": Calibration(1.1, 0.001, 0.01, 7, 0.02).to_dict()}
    )
    assert other.models(fp.key, "calibration") == db.models(fp.key, "calibration")
    _, again = import_table(other, path)  # idempotent
    assert again == dict.fromkeys(counts, 0)


def test_an_older_database_gains_the_figure_column_and_keeps_its_models_apart(tmp_path):
    """A database written before whole-model figures named how they were taken (and
    before anchors): opening it adds the columns (old rows: the fastest of 3 window
    floors, speed 1), the current figures
    never mix with the old ones, and measuring a model again replaces its old row."""
    import gzip
    import json
    import sqlite3

    from nas.latency import lut, transport

    path = tmp_path / "old.db"
    columns = [c for c in lut.models.columns if c.name not in ("figure", "speed")]
    with sqlite3.connect(path) as conn:  # the models table as older versions made it
        conn.execute(
            f"CREATE TABLE {lut.models.name} ({', '.join(c.name for c in columns)}, "
            "PRIMARY KEY (fingerprint, purpose, arch_id))"
        )
        for arch_id in ("old1", "old2"):
            conn.execute(
                f"INSERT INTO {lut.models.name} VALUES (?, 'calibration', ?, 'tiny', '{{}}', 2.0, "
                "0.1, 0.3, "
                "0.0, '2026-12-01 10:00:00')",
                ("fp", arch_id),
            )
    table = LatencyTable(f"sqlite:///{path}")
    assert table.models("fp", "calibration") == {}  # not the way figures are taken now
    old = table.models("fp", "calibration", figure=None)
    assert (
        {r.figure for r in old.values()} == {"fastest of 3 window floors"} == {lut.OLD_MODEL_FIGURE}
    )
    assert {r.speed for r in old.values()} == {1.0}  # taken without anchors
    table.add_model("fp", "calibration", ModelRecord("old1", "tiny", "{}", 2.5, 0.1, 0.4))
    now = table.models("fp", "calibration")
    assert list(now) == ["old1"] and now["old1"].ms == 2.5
    assert (
        now["old1"].figure == MeasureSettings().label == "median of 18 window floors of 7 samples"
    )
    assert set(table.models("fp", "calibration", figure=None)) == {"old1", "old2"}
    # An exported file from before the column: its models take the old figure.
    fp = fingerprint(Target("cpu"))
    values = [fp.key, "calibration", "m", "tiny", "{}", 2.0, 0.1, 0.3, 0.0, "2026-12-01T10:00:00"]
    row = {c.name: v for c, v in zip(columns, values, strict=True)}
    body = {"format": transport.FORMAT, "version": transport.FORMAT_VERSION,
            "fingerprint": json.loads(fp.to_json()), "models": [row]}  # fmt: skip
    moved = tmp_path / "old.json.gz"
    with gzip.open(moved, "wt", encoding="utf-8") as f:
        json.dump(body, f)
    other = LatencyTable(f"sqlite:///{tmp_path / 'other.db'}")
    assert import_table(other, moved)[1]["models"] == 1
    assert other.models(fp.key, "calibration", figure=lut.OLD_MODEL_FIGURE)["m"].ms == 2.0


def test_import_of_a_bad_file_changes_nothing(tmp_path, db):
    fp = fingerprint(Target("cpu"))
    db.register(fp)
    db.add_entry(fp.key, "u0", _m(1.0))
    path = tmp_path / "t.json.gz"
    export_table(db, fp.key, path)
    with gzip.open(path, "rt") as f:
        body = json.load(f)
    body["entries"].append({"fingerprint": fp.key, "unit": "broken"})  # lacks columns
    body["entries"].insert(0, {**body["entries"][0], "unit": "first-fine"})
    with gzip.open(path, "wt") as f:
        json.dump(body, f)
    other = LatencyTable(f"sqlite:///{tmp_path / 'o.db'}")
    with pytest.raises(NasError, match=r"entries\[2\]"):
        import_table(other, path)
    assert other.fingerprints() == [] and other.entries(fp.key) == {}
    (tmp_path / "junk.gz").write_bytes(b"not gzip")
    with pytest.raises(NasError, match="not a latency table file"):
        import_table(other, tmp_path / "junk.gz")


def test_unreadable_database(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(NasError) as info:
        LatencyTable(f"sqlite:///{path}")
    assert "cannot open the latency database" in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == b"this is not a database" * 100  # untouched
    with pytest.raises(NasError, match="invalid database URL"):
        LatencyTable("nonsense://")


# -- table from another machine -----------------------------------------------------


def test_a_travelled_table_is_used_for_its_setting(db, micro):
    here = fingerprint(Target("cpu"))
    phone = _other_machine(here)
    db.register(phone)
    for unit in space_units(micro):
        db.add_entry(phone.key, unit.key, _m(0.5))
        db.add_entry(phone.key, cold_key(unit.key), _m(2.0))
    db.save_calibration(phone.key, micro.name, Calibration(cold_scale=0.25).to_dict())
    assert resolve_fingerprint(db, Target("cpu")) == phone
    p = load_predictor(db, Target("cpu"))
    arch = sample_random(micro, 0)
    assert p.predict(arch) == pytest.approx((0.5 + 0.25 * 2.0) * (arch.num_blocks + 2))
    with pytest.raises(NasError, match="another machine"):
        load_predictor(db, Target("cpu"), measure_missing=True)
    with pytest.raises(NasError, match="no latency table for"):
        resolve_fingerprint(db, Target("cpu", batch=4))
    db.register(_other_machine(here, cores=4))
    with pytest.raises(NasError, match="--fingerprint KEY"):
        resolve_fingerprint(db, Target("cpu"))  # two candidates: the user must choose
    assert resolve_fingerprint(db, Target("cpu"), phone.key) == phone


def test_cold_figures_go_to_spaces_whose_heaviest_network_passes_the_bar(micro, monkeypatch):
    from nas.latency import timing

    # Each unit's parameters as counted from its description are its module's.
    for unit in [*space_units(micro), *space_units(load_space("tiny"))[::97]]:
        assert unit.params == sum(p.numel() for p in unit.module().parameters()), unit.key
    # The heaviest network by brute force: many random networks' float32 weights.
    heaviest = max(
        sum(4 * u.params for u in units_of(sample_random(micro, seed))) for seed in range(400)
    )
    cpu, onnx = fingerprint(Target("cpu")), fingerprint(Target("onnxruntime-cpu"))
    assert timing.space_cold_bytes(micro, cpu) == 0  # KBs: hot figures alone
    monkeypatch.setattr(timing, "COLD_FROM_BYTES", heaviest - 1)
    assert timing.space_cold_bytes(micro, cpu) == cpu.cold_bytes > 0
    assert timing.space_cold_bytes(micro, onnx) == 0  # never on a runtime without them
    monkeypatch.setattr(timing, "COLD_FROM_BYTES", heaviest)
    assert timing.space_cold_bytes(micro, cpu) == 0
    # `tiny` stays under the bar at any resolution, `mobile` passes it.
    assert timing.space_cold_bytes(load_space("mobile"), cpu) == cpu.cold_bytes
    monkeypatch.setattr(timing, "COLD_FROM_BYTES", 4 << 20)
    assert timing.space_cold_bytes(load_space("tiny"), cpu) == 0


def test_a_calibration_without_a_cold_term_predicts_from_hot_figures_alone(db, micro):
    here = fingerprint(Target("cpu"))
    db.register(here)
    for unit in space_units(micro):  # hot figures only: what a `tiny` table holds
        db.add_entry(here.key, unit.key, _m(0.5))
    db.save_calibration(here.key, micro.name, Calibration(scale=2.0).to_dict())
    p = load_predictor(db, Target("cpu"))
    arch = sample_random(micro, 0)
    assert not p.cold and p.predict(arch) == pytest.approx(1.0 * (arch.num_blocks + 2))


def test_a_table_of_window_medians_keeps_its_key_and_is_never_used(db):
    """Fingerprints stored before ``statistic`` and ``cold_bytes`` existed: their JSON
    lacks them, their key is the sha of that JSON, and they were taken with window medians
    of hot units."""
    import hashlib
    import json

    here = fingerprint(Target("cpu"))
    data = json.loads(here.to_json())
    data = {k: v for k, v in data.items() if k not in ("statistic", "cold_bytes")}
    old = Fingerprint.from_json(json.dumps(data))
    assert old.statistic == "median" and here.statistic == "floor"
    assert old.cold_bytes == 0 < here.cold_bytes
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert old.key == hashlib.sha256(text.encode()).hexdigest()[:16] != here.key
    db.register(old)
    db.save_calibration(old.key, "micro", Calibration().to_dict())
    with pytest.raises(NasError, match="median figures"):
        resolve_fingerprint(db, Target("cpu"))  # same machine and setting, other statistic
    assert resolve_fingerprint(db, Target("cpu"), old.key) == old  # asked for by key


def test_empty_database_says_build_first(db):
    with pytest.raises(NasError, match="nas latency build"):
        resolve_fingerprint(db, Target("cpu"))


# -- predictor ------------------------------------------------------------------------


def test_predictor_sums_units_and_applies_calibration(micro):
    arch = sample_random(micro, 1)
    units = units_of(arch)
    table = {u.key: 0.1 * (i + 1) for i, u in enumerate(units)}
    raw = sum(table.values())
    assert Predictor(table).predict(arch) == pytest.approx(raw)
    cal = Calibration(scale=1.2, per_unit=0.01, offset=0.05)
    assert Predictor(table, cal).predict(arch) == pytest.approx(
        1.2 * raw + 0.01 * len(units) + 0.05
    )
    # A table with cold figures: their sum gets its own coefficient.
    both = {**table, **{cold_key(u.key): 0.5 for u in units}}
    cold = Calibration(scale=1.2, per_unit=0.01, offset=0.05, cold_scale=0.3)
    sums = Predictor(both, cold, cold=True).sums(arch)
    assert (sums.hot, sums.cold, sums.units) == pytest.approx((raw, 0.5 * len(units), len(units)))
    assert Predictor(both, cold, cold=True).predict(arch) == pytest.approx(
        1.2 * raw + 0.3 * 0.5 * len(units) + 0.01 * len(units) + 0.05
    )
    # The units' inputs and outputs: counted by running each unit's module on a sample.
    elements = 0
    for u in units:
        x = torch.zeros(1, *u.in_shape)
        with torch.no_grad():
            elements += x.numel() + u.module().eval()(x).numel()
    assert sums.io == pytest.approx(elements / 1e6)
    moved = Calibration(
        scale=1.2, offset=0.05, io_scale=-0.5, weights_scale=0.02, weights_sq_scale=0.3
    )
    read = sum(u.weights_read for u in units)
    assert sums.weights == pytest.approx(read / 1e6) and read > 0
    assert Predictor(table, moved).predict(arch) == pytest.approx(
        1.2 * raw - 0.5 * elements / 1e6 + 0.02 * read / 1e6 + 0.3 * (read / 1e6) ** 2 + 0.05
    )

    with pytest.raises(MissingUnitsError):  # hot figures alone do not do for a cold table
        Predictor(table, cold, cold=True).predict(arch)


def test_weights_read_skip_taps_that_only_meet_padding():
    """A 7x7 conv ("same" padding 3) on a 2x2 input: output row 0 meets input rows with
    taps 3 and 4, row 1 with taps 2 and 3, so taps 2-4 of 7 per axis are read (9 of 49);
    on a 7x7 input every tap is. BatchNorm's four buffers and two parameters are read."""
    from nas.latency.units import BlockUnit, HeadUnit
    from nas.model.ops import BlockSpec

    spec = BlockSpec("conv", cin=16, cout=8, kernel=7, stride=1, activation="relu")
    bn = 4 * 8 * 4 + 8  # weight, bias, running mean and var (float32); batch count (int64)
    assert BlockUnit(spec, (16, 2, 2)).weights_read == 8 * 16 * 49 * 4 * 9 // 49 + bn
    assert BlockUnit(spec, (16, 7, 7)).weights_read == 8 * 16 * 49 * 4 + bn
    head = HeadUnit((8, 2, 2), channels=32, num_classes=10, activation="relu")
    module = head.module()
    every = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    assert head.weights_read == every  # 1x1 conv and linear layers: every weight


def test_missing_units(micro):
    arch = sample_random(micro, 2)
    with pytest.raises(MissingUnitsError) as info:
        Predictor({}).predict(arch)
    assert "lacks" in str(info.value) and "\n" not in str(info.value)
    filled = Predictor({}, measure_missing=lambda unit, cold: 1.0)
    assert filled.predict(arch) == pytest.approx(arch.num_blocks + 2)
    assert len(filled.entries) == len({u.key for u in units_of(arch)})
    asked: list[bool] = []
    both = Predictor({}, cold=True, measure_missing=lambda unit, cold: asked.append(cold) or 1.0)
    both.predict(arch)
    assert sorted(set(asked)) == [False, True]
    assert len(both.entries) == 2 * len({u.key for u in units_of(arch)})


def test_fit_calibration_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    hot = rng.uniform(0.5, 20, 50)
    units = rng.integers(5, 40, 50)
    cold = rng.uniform(0.5, 30, 50)
    io = rng.uniform(0.01, 2, 50)
    sums = [Sums(*row) for row in zip(hot, units, cold, io, strict=True)]
    cal = fit_calibration(sums, 1.1 * hot + 0.02 * units + 0.3)
    assert (cal.scale, cal.per_unit, cal.offset) == pytest.approx((1.1, 0.02, 0.3), rel=1e-6)
    assert cal.fit_mape < 1e-9 and cal.cold_scale == cal.io_scale == 0.0
    measured = 0.7 * hot + 0.4 * cold + 0.02 * units + 0.3
    cal = fit_calibration(sums, measured, cold=True)
    assert (cal.scale, cal.cold_scale, cal.per_unit, cal.offset) == pytest.approx(
        (0.7, 0.4, 0.02, 0.3), rel=1e-6
    )
    cal = fit_calibration(sums, measured - 0.05 * io, cold=True, io=True)
    assert (cal.scale, cal.cold_scale, cal.per_unit, cal.io_scale, cal.offset) == pytest.approx(
        (0.7, 0.4, 0.02, -0.05, 0.3), rel=1e-6
    )
    read = rng.uniform(1, 30, 50)
    sums = [Sums(*row) for row in zip(hot, units, cold, io, read, strict=True)]
    cal = fit_calibration(sums, measured + 0.01 * read + 0.002 * read**2, cold=True, weights=True)
    assert (cal.scale, cal.cold_scale, cal.weights_scale, cal.weights_sq_scale) == pytest.approx(
        (0.7, 0.4, 0.01, 0.002), rel=1e-6
    )
    assert cal.io_scale == 0.0
    assert cal.n_models == 50
    with pytest.raises(NasError, match="at least 5"):
        fit_calibration(sums[:1], [1.0])
    with pytest.raises(NasError, match="at least 7"):
        fit_calibration(sums[:6], [1.0] * 6, cold=True, io=True)


# -- the workflow end to end on a micro space ------------------------------------------


class _StopAfter:
    def __init__(self, n: int) -> None:
        self.n = n

    def start(self, label, total):
        pass

    def note(self, message):
        pass

    def advance(self, n=1):
        self.n -= n
        if self.n <= 0:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_build_is_resumable_and_predictions_validate(db, micro, monkeypatch):
    from nas.latency import build, calibration, canary, timing
    from tests.micro import TRUSTING_CALIBRATION, TrustingSettings

    # Which units and models a busy machine refuses as too noisy is chance: with every
    # figure trusted, the bookkeeping (resume, calibrate, validate) has exact counts.
    for module in (build, timing, canary):
        monkeypatch.setattr(module, "MeasureSettings", TrustingSettings)
    monkeypatch.setattr(calibration, "CALIBRATION_SETTINGS", TRUSTING_CALIBRATION)
    monkeypatch.setattr(build, "UNIT_GROUP", 5)  # units are stored group by group
    # micro's networks hold KBs (hot figures alone); with the bar at 0 they get cold
    # figures as `mobile`'s do, so that path is exercised end to end here.
    monkeypatch.setattr(timing, "COLD_FROM_BYTES", 0)
    target = Target("cpu")
    with pytest.raises(KeyboardInterrupt):
        build_table(micro, target, db, progress=_StopAfter(7))  # killed in the 2nd group
    stored = len(db.entries(fingerprint(target).key))
    assert stored == 10  # both groups it finished
    report = build_table(micro, target, db)
    assert report.already == stored and not report.noisy
    # Every unit hot and cold (this CPU target's fingerprint has cold figures).
    assert report.figures == 2 * report.units == 2 * len(space_units(micro))
    assert report.measured == report.figures - stored
    again = build_table(micro, target, db)
    assert again.measured == 0 and again.already == again.figures
    cal = calibrate(micro, target, db, n=8)
    assert cal.n_models == 8
    result = validate(micro, target, db, n=10, repeat=3)
    calibration_ids = set(calibration.calibration_models(db, fingerprint(target).key))
    assert len(calibration_ids) == 8  # taken as calibrations take them, labelled so
    assert calibration_ids.isdisjoint(db.models(fingerprint(target).key, "validation"))
    assert result.n == 10 and 0 <= result.within_10 <= 1
    # How much cheaper a prediction is than a measurement is a timing: `nas latency
    # validate` prints it (benchmarks/latency_tables.sh); here only that both were timed.
    assert result.predict_us > 0 and result.measure_s > 0
    stored = db.validations(fingerprint(target).key)[-1]
    assert stored["n"] == result.n
    assert stored["repeat_n"] == result.repeat_n == 3
    assert result.repeat_within_5 <= result.repeat_within_10 == stored["repeat_within_10"]
    assert -1 <= stored["repeat_kendall_tau"] == result.repeat_kendall_tau <= 1
    assert -1 <= result.repeat_prediction_tau <= 1
    # The space's anchors were timed with every group; the first group set their reference.
    fp_key = fingerprint(target).key
    reference = db.models(fp_key, "anchor")
    assert 1 <= len(reference) <= ANCHORS
    assert set(reference) <= {a.id for a in Anchors.of(micro).archs}
    models = [
        *calibration.calibration_models(db, fp_key).values(),
        *db.models(fp_key, "validation").values(),
    ]
    assert all(r.speed > 0 for r in models)
    assert 0 < result.speed_low <= result.speed_high
    assert 0 <= stored["unanchored_within_10"] <= 1
    # Each model was measured again in a second pass (in reverse order), kept apart.
    second = db.models(fp_key, "validation pass 2")
    assert second and set(second) <= set(db.models(fp_key, "validation"))
    assert stored["passes"] == result.passes == 2
    # --fresh forgets every pass.
    validate(micro, target, db, n=3, fresh=True, passes=1)
    assert len(db.models(fp_key, "validation")) == 3
    assert not db.models(fp_key, "validation pass 2")


def test_models_are_timed_at_the_tables_reference_speed(db, micro, monkeypatch):
    """``measure_paced`` (how a search's front is timed): the machine runs twice as slow
    as when the table's anchors were timed, and the figures come back at that reference
    speed; with no reference on record (another machine's table) the anchors' first
    round sets one, so the figures are as measured."""
    from nas.latency import anchors as anchors_module
    from nas.latency import timing

    clock, slow = ScriptedClock(), {"by": 2.0}

    def ms_of(arch: Architecture) -> float:  # a known figure per network
        return 0.1 + int(arch.id[:4], 16) / 65536

    def prepare_arch(arch, target):
        return clock.runner(lambda: ms_of(arch) * slow["by"])

    monkeypatch.setattr(timing, "prepare_arch", prepare_arch)
    monkeypatch.setattr(anchors_module, "prepare_arch", prepare_arch)
    target = Target("cpu")
    front = [sample_random(micro, seed) for seed in range(3)]
    unknown = timing.measure_paced(micro, target, db, front)  # not registered here
    assert {k: m.ms for k, m in unknown.items()} == pytest.approx(
        {a.id: 2 * ms_of(a) for a in front}
    )
    fp = fingerprint(target)
    db.register(fp)
    for a in Anchors.of(micro).archs:  # timed when the machine ran at full speed
        db.add_model(fp.key, "anchor", ModelRecord(a.id, micro.name, a.to_json(), ms_of(a), 0, 0))
    paced = timing.measure_paced(micro, target, db, [*front, front[0]])
    assert {k: m.ms for k, m in paced.items()} == pytest.approx({a.id: ms_of(a) for a in front})
    assert all(m.speed == pytest.approx(2.0) for m in paced.values())


def test_anchor_speeds_are_each_rounds_median_ratio_to_the_first_floors(micro):
    stored = []
    anchors = Anchors([], on_reference=stored.append)
    with pytest.raises(NasError, match="at least one anchor"):
        anchors.speeds({})
    # The first call sets the reference: each anchor's median floor (2, 4, 1 ms).
    first = {"a": [2.0, 4.0, 2.0], "b": [4.0, 4.0, 8.0], "c": [1.0, 1.0, 1.0]}
    assert anchors.speeds(first) == [1.0, 1.0, 1.0]  # ratios (1,1,1), (2,1,1), (1,2,1)
    assert stored == [{"a": 2.0, "b": 4.0, "c": 1.0}]
    assert anchors.speeds({"a": [3.0, 4.0], "b": [4.0, 8.0], "c": [1.5, 1.0]}) == [1.5, 2.0]
    # An anchor first timed now is referenced at the others' speed: 9 ms at 1.5, 12 at 2.
    assert anchors.speeds({"a": [3.0, 4.0], "b": [6.0, 8.0], "x": [9.0, 12.0]}) == [1.5, 2.0]
    assert anchors.reference["x"] == 6.0 and stored[-1] == {"x": 6.0}
    with pytest.raises(NasError, match="other networks"):
        anchors.speeds({"y": [9.0]})  # no anchor with a reference
    # Always the same networks of a space, distinct.
    first, again = Anchors.of(micro), Anchors.of(micro)
    assert [a.id for a in first.archs] == [a.id for a in again.archs]
    assert len({a.id for a in first.archs}) == len(first.archs) == ANCHORS


def test_a_group_is_stated_at_its_anchors_reference_speed(monkeypatch, micro):
    """Two groups of one model each: the anchors take 2 ms in the first (the reference)
    and 4 ms in the second, the model 3 ms in both. The second group's rounds run at
    speed 2, so its model is stated at 1.5 ms; the anchors' windows are interleaved with
    the group's."""
    from nas.latency import timing

    slow = {"factor": 1.0}
    log: list[str] = []
    clock = ScriptedClock()

    def sleeper(name, ms, scaled):
        def call() -> float:
            log.append(name)
            return ms * (slow["factor"] if scaled else 1.0)

        return clock.runner(call)

    anchors = Anchors.of(micro, n=2)
    from nas.latency import anchors as anchors_module

    monkeypatch.setattr(
        anchors_module, "prepare_arch", lambda a, target: sleeper(a.id, 2.0, scaled=True)
    )

    class NoCanary:
        def read(self):
            return 0.0

    settings = MeasureSettings(samples=5, min_sample_ms=0.0, min_warmup=2, settle_window=1,
                               windows=4, floor_tolerance=0.3)  # fmt: skip
    groups = timing.interleaved(
        ["m1", "m2"], lambda item: sleeper(item, 3.0, scaled=False), Target("cpu"), settings,
        1, NoCanary(), anchors,
    )  # fmt: skip
    (first,) = next(groups)
    slow["factor"] = 2.0
    (second,) = next(groups)
    assert anchors.reference.keys() == {a.id for a in anchors.archs}
    assert first.result.speed == pytest.approx(1.0)
    assert first.result.ms == pytest.approx(3.0)
    assert second.result.speed == pytest.approx(2.0)
    assert second.result.ms == pytest.approx(1.5)
    record = timing.record_of(micro, timing.Timed(anchors.archs[0], second.result, 0.0, 0.0))
    assert record.ms == second.result.ms and record.speed == second.result.speed
    assert record.ms * record.speed == pytest.approx(3.0)  # as measured
    runs = [name for i, name in enumerate(log) if i == 0 or log[i - 1] != name]
    ids = [a.id for a in anchors.archs]
    assert runs[:3] == ["m1", *ids]  # a round: the group's window, then each anchor's


def test_repeatability_is_the_share_of_second_figures_near_the_first(monkeypatch, micro):
    """Second figures 3%, 8% (stated at the anchors' reference speed: measured 4.32 ms at
    speed 2), 20% and 0% off the first, and one the machine stayed too busy for: 2 of 4
    within 5%, 3 of 4 within 10%."""
    from nas.latency import timing, validation
    from nas.latency.progress import Silent

    archs = [sample_random(micro, seed) for seed in range(5)]
    first = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    second = iter([(1.03, 1.0), (2.16, 2.0), (None, 1.0), (9.6, 1.0), (16.0, 0.9)])

    def again(archs, target, progress, anchors):
        for arch in archs:
            ms, speed = next(second)
            result = NoisyMeasurementError("busy") if ms is None else _m(ms, speed)
            yield timing.Timed(arch, result, 0.1, 0.0)

    monkeypatch.setattr(validation, "time_models", again)
    twice, second = validation.repeatability(archs, Target("cpu"), Silent(), Anchors([]))
    assert twice.tolist() == [0, 1, 3, 4]
    assert np.abs(second - first[twice]) / first[twice] == pytest.approx([0.03, 0.08, 0.2, 0.0])


def test_validate_needs_a_calibration(db, micro):
    with pytest.raises(NasError, match="no calibration"):
        validate(micro, Target("cpu"), db, n=5)
    with pytest.raises(NasError, match="must be 1 to 3, got 0") as err:
        validate(micro, Target("cpu"), db, n=5, passes=0)
    assert err.value.field == "passes"


def test_a_validation_figure_is_the_geometric_mean_of_its_passes(db):
    from nas.latency.validation import passes_combined

    first = {
        "a": ModelRecord("a", "micro", "{}", 2.0, 0.1, 0.3, speed=1.0),
        "b": ModelRecord("b", "micro", "{}", 3.0, 0.1, 0.3, speed=0.9),
    }
    for rec in first.values():
        db.add_model("fp", "validation", rec)
    db.add_model(
        "fp", "validation pass 2", ModelRecord("a", "micro", "{}", 8.0, 0.1, 0.3, speed=4.0)
    )
    out = passes_combined(db, "fp", first)
    assert (out["a"].ms, out["a"].speed) == pytest.approx((4.0, 2.0))  # sqrt(2*8), sqrt(1*4)
    assert out["a"].ms * out["a"].speed == pytest.approx(8.0)  # as measured: sqrt(2*1 * 8*4)
    assert out["b"] == first["b"]  # the second pass could not time it: its one figure
    assert passes_combined(db, "fp", first, passes=1)["a"].ms == 2.0


def test_calibration_is_per_space(db, micro):
    fp = fingerprint(Target("cpu"))
    db.register(fp)
    for name, scale in (("a", 1.0), ("b", 2.0)):
        db.save_calibration(fp.key, name, Calibration(scale=scale).to_dict())
    with pytest.raises(NasError, match="calibrated: a, b"):
        load_predictor(db, Target("cpu"))
    assert load_predictor(db, Target("cpu"), space="b").calibration.scale == 2.0
    with pytest.raises(NasError, match="no calibration for space 'c'"):
        load_predictor(db, Target("cpu"), space="c")


# -- drift and noise: the canary ------------------------------------------------------


def test_reference_is_fixed_by_the_first_build(db):
    fp = fingerprint(Target("cpu"))
    db.register(fp)
    assert db.reference(fp.key) == 0.0
    db.set_reference(fp.key, 0.5)
    db.set_reference(fp.key, 0.7)  # a later build does not move it
    assert db.reference(fp.key) == 0.5


def test_canary_reads_and_caches():
    from nas.latency.canary import CANARY, Canary

    assert CANARY.num_blocks == 3
    canary = Canary(
        Target("cpu"), MeasureSettings(samples=7, floor_tolerance=1.0)
    )  # a busy test machine
    assert canary.read() > 0


def test_steadiness_agreement_counts_pairs_by_hand():
    from nas.latency.canary import Steadiness

    s = Steadiness(((1.00, 1.04, 1.20, 0.96), (10.0, 10.5)), refused=1, seconds=3.0)
    # Pairs (earlier, later) of one network and |later - earlier| / earlier:
    # (1.00,1.04) 4%, (1.00,1.20) 20%, (1.00,0.96) 4%, (1.04,1.20) 15.4%,
    # (1.04,0.96) 7.7%, (1.20,0.96) 20%; (10.0,10.5) 5%. No pair across networks.
    assert s.agreement(0.05) == pytest.approx(3 / 7)
    assert s.agreement(0.10) == pytest.approx(4 / 7)
    assert s.agreement(0.25) == 1.0
    assert s.count == 6
    # Medians 1.02 and 10.25: the median of both is their mean.
    assert s.median_ms() == pytest.approx((1.02 + 10.25) / 2)
    ratios = sorted([x / 1.02 for x in (1.00, 1.04, 1.20, 0.96)] + [10.0 / 10.25, 10.5 / 10.25])
    assert s.relative_quantile(0.0) == pytest.approx(ratios[0])
    assert s.relative_quantile(1.0) == pytest.approx(ratios[-1])
    assert math.isnan(Steadiness(((1.0,), (2.0,)), 0, 1.0).agreement(0.1))


def test_steadiness_measures_for_the_time_asked(micro):
    import itertools

    from nas.latency.canary import steadiness

    # Its clock reads 0.5 s later at each look: the groups end at 0.5 and 1.0 s, and the
    # time asked is then up.
    ticks: list[float] = []
    clock = itertools.count(0.0, 0.5).__next__
    s = steadiness(Target("cpu"), 1.0, copies=2, on_reading=ticks.append, clock=clock)
    assert ticks == [0.5, 1.0] and s.seconds == 1.5
    assert s.count + s.refused == 2 * len(ticks)  # a reading per copy per group
    # Copies of the canary are one network: their readings are pooled.
    assert len(s.readings) == 1 and all(r > 0 for rs in s.readings for r in rs)
    archs = [sample_random(micro, np.random.default_rng(i)) for i in range(3)]
    s = steadiness(Target("cpu"), 0.1, archs=archs, clock=itertools.count(0.0, 1.0).__next__)
    assert len(s.readings) == 3 and s.count + s.refused == 3  # one group: the time was up
    with pytest.raises(NasError, match="networks: needs at least one"):
        steadiness(Target("cpu"), 0.1, archs=[])


def test_cheapest_is_the_brute_force_minimum(micro):
    """Shortest path over stage states against enumerating every architecture."""
    import hashlib

    from nas.latency.units import cheapest
    from nas.space.searchspace import decode, dimensions

    def weight(unit) -> float:  # arbitrary but fixed per unit
        return int(hashlib.sha256(unit.key.encode()).hexdigest()[:6], 16) / 1e6

    dims = dimensions(micro)
    archs: list[Architecture] = []

    def rec(params, i):
        if i == len(dims):
            try:
                archs.append(decode(micro, params))
            except NasError:
                return
            return
        for c in dims[i].choices:
            rec({**params, dims[i].label: c}, i + 1)
        rec(params, i + 1)

    rec({}, 0)
    totals = [sum(weight(u) for u in units_of(arch)) for arch in archs]
    assert cheapest(micro, weight) == pytest.approx(min(totals))
    # The predictor's fastest, every calibration term included, against predicting all.
    table = {u.key: weight(u) for u in space_units(micro)}
    cal = Calibration(scale=1.3, per_unit=0.01, offset=0.2, io_scale=-0.02, weights_scale=0.01)
    predictor = Predictor(table, cal)
    assert predictor.fastest(micro) == pytest.approx(min(predictor.predict_many(archs)))
    # With the squared weights term (either sign) a lower bound, and a close one here.
    for sq in (5.0, -5.0):
        predictor = Predictor(table, dataclasses.replace(cal, weights_sq_scale=sq))
        best = min(predictor.predict_many(archs))
        assert best - 0.05 * abs(best) <= predictor.fastest(micro) <= best + 1e-12
