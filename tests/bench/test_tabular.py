"""NAS-Bench-201 tabular mode: lookups stand in for training, through the same stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nas.bench.tabular import TabularBenchmark, open_benchmark
from nas.cli.app import app
from nas.core.errors import NasError
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import pareto_front
from nas.search.config import load_study
from nas.search.results import EvaluationStore
from nas.search.runner import run_inprocess
from nas.search.setup import prepare

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "nasbench201"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"NAS-Bench-201 tables not found at {DATA}"
)


@pytest.fixture(scope="module")
def bench() -> TabularBenchmark:
    return open_benchmark("nasbench201", str(DATA), "pixel3")


def test_every_cell_of_a_class_is_scored_by_its_fastest_row(bench):
    table = bench.table
    lat = table.latency("pixel3")
    ids = table.canonical_ids
    rng = np.random.default_rng(0)
    for i in rng.choice(len(table), size=300, replace=False):
        members = np.flatnonzero(ids == ids[i])
        fastest = min(members, key=lambda m: (lat[m], m))
        assert bench.representative(table.arch_str[i]) == fastest
        found = bench.lookup(table.arch_str[i])
        assert found.row == fastest and found.canonical_id == ids[i]
        assert found.val_accuracy == pytest.approx(table.val_accuracy[fastest] / 100)
        assert found.test_accuracy == pytest.approx(table.test_accuracy("cifar10")[fastest] / 100)
        assert found.latency_ms == lat[fastest]
    # The best cell is alone in its class: it scores itself (94.37 test, index 6111).
    best = bench.lookup(table.arch_str[6111])
    assert best.row == 6111 and best.test_accuracy == pytest.approx(0.9437, abs=1e-4)
    assert bench.fastest_ms() == lat.min()


def test_bad_tabular_input_names_the_field(tmp_path, monkeypatch):
    with pytest.raises(NasError) as err:
        open_benchmark("nasbench201", str(DATA), "pixel99")
    assert err.value.field == "tabular.device" and "pixel3" in err.value.reason
    with pytest.raises(NasError) as err:
        open_benchmark("nasbench201", str(tmp_path / "nowhere"), "pixel3")
    assert err.value.field == "tabular.path"
    monkeypatch.setenv("NAS_DATA", str(tmp_path / "empty-root"))  # no path, none in the root
    with pytest.raises(NasError, match=r"--data-path.*empty-root/nasbench201") as err:
        open_benchmark("nasbench201", "", "pixel3")
    assert err.value.field == "tabular.path"
    for overrides, field in [
        ({"tabular.benchmark": "nasbench101"}, "tabular.benchmark"),
        ({"search.sampler": "rea"}, "search.sampler"),  # pareto study: REA is single-objective
        ({"search.storage": "sqlite:///:memory:"}, "search.storage"),  # ray executor
    ]:
        with pytest.raises(NasError) as err:
            load_study("nb201_pixel3", overrides)
        assert err.value.field == field, overrides
    # A space without a cell cannot be looked up.
    study = load_study("nb201_cifar10", {"tabular.path": str(DATA), "space": "tiny"})
    with pytest.raises(NasError) as err:
        prepare(study)
    assert err.value.field == "space"


def _study(tmp_path, name="nb201_cifar10", **overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return load_study(
        name,
        {
            "tabular.path": str(DATA),
            "search.storage": f"sqlite:///{tmp_path / 'studies.db'}",
            "search.executor": "inprocess",
            "export_dir": str(tmp_path / "exports"),
            **overrides,
        },
    )


def _rows(study) -> list[int]:
    evs = EvaluationStore(study.search.storage).of_study(study.name)
    return [int(e.reason.rsplit(" ", 1)[1]) for e in evs if e.reason.startswith("nasbench201")]


@pytest.mark.parametrize("sampler", ["random", "tpe", "rea", "ls"])
def test_a_seeded_in_process_search_repeats_and_never_pays_twice(tmp_path, bench, sampler):
    runs = []
    for k in range(2):
        study = _study(tmp_path / str(k), **{"search.sampler": sampler, "search.trials": 60})
        run_inprocess(prepare(study))
        runs.append(_rows(study))
    assert runs[0] == runs[1] and len(runs[0]) > 20
    ids = bench.table.canonical_ids
    assert len({int(ids[r]) for r in runs[0]}) == len(runs[0])  # one query per network
    evs = EvaluationStore(study.search.storage).of_study(study.name)
    for e in evs:  # what is stored is what the table says about the row
        row = int(e.reason.rsplit(" ", 1)[1]) if e.reason.startswith("nasbench201") else None
        if row is not None:
            assert e.val_accuracy == pytest.approx(bench.table.val_accuracy[row] / 100)
            assert e.arch.cell == bench.table.arch_str[row]
            assert e.latency_ms == bench.table.latency("pixel3")[row]


def test_a_tabular_trial_needs_no_table_where_it_runs(tmp_path, bench):
    """The head looks the network up as it samples it; the trial (on any node of a
    cluster) gets the figures with its config and never opens the tables."""
    import optuna

    from nas.search.plan import _Define
    from nas.search.trial import run_trial

    setup = prepare(_study(tmp_path))
    trial = optuna.create_study().ask()
    config = _Define(setup.space, (), setup.predictor)(trial)
    arch_cell = json.loads(config["arch_json"])["cell"]
    found = bench.lookup(arch_cell)
    assert config["tabular"] == {
        "val_accuracy": found.val_accuracy,
        "row": found.row,
        "acc_12ep": found.acc_12ep,
    }
    # A worker machine without the tables: the study's path leads nowhere there.
    elsewhere = _study(tmp_path, **{"tabular.path": str(tmp_path / "not-on-this-node")})
    ev = run_trial(config, study=elsewhere, data=None, artifacts="", report=lambda _: None)
    assert ev.status == "complete" and ev.val_accuracy == found.val_accuracy
    assert ev.reason == f"nasbench201 row {found.row}"


def test_max_queries_stops_on_fresh_lookups(tmp_path):
    study = _study(tmp_path, **{"search.sampler": "random", "search.trials": 500})
    run_inprocess(prepare(study), max_queries=25)
    assert len(_rows(study)) == 25


def test_impossible_latency_budget_is_refused_before_any_lookup(tmp_path, bench):
    fastest = bench.fastest_ms()
    study = _study(
        tmp_path,
        **{"objective.mode": "budget", "objective.latency_budget_ms": fastest / 2},
    )
    with pytest.raises(NasError) as err:
        prepare(study)
    assert err.value.field == "objective.latency_budget_ms" and "pixel3" in err.value.reason


def test_nas_search_runs_the_bundled_studies_from_the_cli(tmp_path, bench, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    common = ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--executor", "inprocess"]
    result = runner.invoke(
        app,
        [
            "search",
            "nb201_cifar10",
            "--trials",
            "40",
            "--sampler",
            "ls",
            *common,
            "--export-dir",
            "so",
            "--data-path",
            str(DATA),
        ],
    )
    assert result.exit_code == 0, result.output
    (best,) = json.loads((tmp_path / "so" / "front.json").read_text())
    assert best["test_accuracy"] == pytest.approx(
        bench.lookup(_cell_of(best, "nb201_cifar10")).test_accuracy, abs=1e-9
    )
    assert (Path(best["export"]) / f"nb201_cifar10_{best['arch_id'][:12]}.py").is_file()
    result = runner.invoke(
        app,
        [
            "search",
            "nb201_pixel3",
            "--trials",
            "40",
            "--device",
            "raspi4",
            *common,
            "--export-dir",
            "hw",
            "--data-path",
            str(DATA),
        ],
    )
    assert result.exit_code == 0, result.output
    front = json.loads((tmp_path / "hw" / "front.json").read_text())
    table = bench.table
    lat = table.latency("raspi4")
    for m in front:
        row = table.index_of(_cell_of(m, "nb201_pixel3"))
        assert m["measured_ms"] == m["predicted_ms"] == lat[row]
    accs = [m["val_accuracy"] for m in front]
    lats = [m["measured_ms"] for m in front]
    assert pareto_front(list(zip(accs, lats, strict=True)), ACCURACY_LATENCY) == list(
        range(len(front))
    )


def _cell_of(member: dict, study: str) -> str:
    """The cell of a front member, read back from its exported JSON."""
    exported = Path(member["export"]) / f"{study}_{member['arch_id'][:12]}.json"
    return json.loads(exported.read_text())["cell"]


def test_tables_in_the_data_root_need_no_path(tmp_path, monkeypatch):
    (tmp_path / "nasbench201").symlink_to(DATA.resolve())
    monkeypatch.setenv("NAS_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # a bundled study's storage is relative to the working directory
    study = load_study("nb201_pixel3")
    assert study.tabular.path == ""
    setup = prepare(study)
    assert setup.predictor.path == str(DATA.resolve())
