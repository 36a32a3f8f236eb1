"""Successive halving wired into real searches (nas.search.halving): which studies get it
and at which rungs, bad settings refused in one line, a tabular study's two fidelities
charged by hand, and digits searches in process and on local Ray where stopped trainings
stay on record (evaluations table: ``stopped``; Optuna: PRUNED) and never enter the front."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from nas.cli.app import app
from nas.core.errors import NasError
from nas.search.config import SearchConfig, load_study
from nas.search.halving import for_study
from nas.search.results import EvaluationStore
from tests.search.test_pipeline import study_in

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "nasbench201"


def test_which_studies_halve_and_at_which_rungs(tmp_path):
    digits = load_study("digits", {"train.epochs": 9, "search.halving_min_epochs": 1})
    h = for_study(digits)
    assert h is not None and h.metrics == ("accuracy", "latency")
    assert [r.epochs for r in h.halving.rungs] == [1, 3]  # 9 completes: no rung there
    assert h.halving.directions == ("maximize", "minimize") and h.halving.eta == 3
    assert for_study(load_study("digits", {"search.early_stopping": False})) is None
    # The bundled study halves from 1 epoch; the default's first rung is at 2, and a
    # training that short has no rung below its end.
    assert [r.epochs for r in for_study(load_study("digits")).halving.rungs] == [1, 3]
    default = {"search.halving_min_epochs": SearchConfig().halving_min_epochs}
    assert for_study(load_study("digits", {**default, "train.epochs": 2})) is None
    assert [r.epochs for r in for_study(load_study("digits", default)).halving.rungs] == [2, 6]
    # Single-objective modes rank on their one score (ASHA's rule).
    budget = load_study("digits", {"objective.mode": "budget", "objective.latency_budget_ms": 1.0})
    assert for_study(budget).metrics == ("objective",)
    # A tabular study halves only when it asks for the table's two fidelities.
    assert for_study(load_study("nb201_pixel3")) is None
    two = load_study("nb201_pixel3", {"tabular.low_fidelity": True})
    assert [r.epochs for r in for_study(two).halving.rungs] == [12]


def test_a_running_report_is_ranked_and_a_final_one_always_goes_on():
    h = for_study(load_study("digits", {"train.epochs": 4, "search.halving_min_epochs": 1}))
    assert h is not None
    first = {"accuracy": 0.5, "latency": 1.0, "status": "running", "epoch": 1}
    assert h.goes_on("a", first)
    worse = {**first, "accuracy": 0.4, "latency": 2.0}
    assert not h.goes_on("b", worse)  # dominated by a; 1 of 2 goes on
    assert h.goes_on("b", {**worse, "status": "complete", "epoch": 4})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[search]\nhalving_eta = 1", "search.halving_eta"),
        ("[search]\nhalving_eta = 2.5", "search.halving_eta"),
        ("[search]\nhalving_min_epochs = 0", "search.halving_min_epochs"),
        ('[search]\nearly_stopping = "moasha"', "search.early_stopping"),
        ("[tabular]\nlow_fidelity = true", "tabular.low_fidelity"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(tmp_path, body, field):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nspace = "tiny"\n' + body + "\n")
    with pytest.raises(NasError) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: {field}:"), str(info.value)
    result = CliRunner().invoke(app, ["search", str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert field in line and "Traceback" not in result.output
    assert not (tmp_path / "nas_studies.db").exists()  # nothing written


# -- a tabular study's two fidelities, by hand -------------------------------------------

#: NAS-Bench-201 rows that are their own class's representative on pixel3, in the order
#: the search gets them: (row, 12-epoch test accuracy %, pixel3 ms), from the tables.
SCRIPT = [
    (6650, 80.11, 9.64513),  # A: first at the rung: goes on
    (4027, 62.30, 13.4224),  # B: dominated by A; keep ceil(2/2) = 1: stopped
    (398, 85.02, 9.65829),  # C: beside A on the front; keep 2 of 3 (A, C): goes on
    (3849, 80.36, 31.1214),  # D: dominated by C, rank 1; keep 2 of 4 (A, C): stopped
    # E dominates A; keep 3 of 5: the front {C, E}, then A (rank 1 with D, first): on
    (13370, 83.71, 3.91083),
]
STOPPED = {4027, 3849}


@pytest.mark.skipif(not DATA.is_dir(), reason=f"NAS-Bench-201 tables not found at {DATA}")
def test_a_tabular_study_charges_12_or_200_epochs_a_lookup(tmp_path):
    from nas.search.plan import Candidate
    from nas.search.runner import run_inprocess
    from nas.search.setup import prepare
    from nas.space.searchspace import sample_random

    study = load_study(
        "nb201_pixel3",
        {
            "tabular.path": str(DATA),
            "tabular.low_fidelity": True,
            "search.halving_eta": 2,
            "search.storage": f"sqlite:///{tmp_path / 'studies.db'}",
            "search.executor": "inprocess",
            "export_dir": str(tmp_path / "exports"),
        },
    )
    setup = prepare(study)
    table = setup.predictor.bench.table
    for row, acc12, ms in SCRIPT:  # the script's figures are the table's
        assert table.low_fidelity()[row] == pytest.approx(acc12)
        assert table.latency("pixel3")[row] == pytest.approx(ms)
        assert setup.predictor.bench.representative(table.arch_str[row]) == row
    base = sample_random(setup.space, 0)
    archs = [dataclasses.replace(base, cell=table.arch_str[row]) for row, _, _ in SCRIPT]
    _, errors = run_inprocess(setup, candidates=[Candidate(a) for a in archs])
    assert errors == []

    trials = optuna.load_study(study_name=study.name, storage=study.search.storage).trials
    charged = [t.user_attrs["epochs"] for t in trials]
    assert charged == [12 if row in STOPPED else 200 for row, _, _ in SCRIPT]
    assert sum(charged) == 3 * 200 + 2 * 12
    pruned = optuna.trial.TrialState.PRUNED
    assert [t.state == pruned for t in trials] == [row in STOPPED for row, _, _ in SCRIPT]
    assert all(t.values is None for t in trials if t.state == pruned)
    by_row = {
        table.index_of(e.arch.cell): e
        for e in EvaluationStore(study.search.storage).of_study(study.name)
    }
    for row, acc12, _ in SCRIPT:
        e = by_row[row]
        if row in STOPPED:
            assert (e.status, e.epochs) == ("stopped", 12)
            assert e.val_accuracy == pytest.approx(acc12 / 100)  # the low fidelity it stopped on
            assert e.reason == (
                f"stopped after epoch 12 of 200: nasbench201 row {row}, its 12-epoch test accuracy"
            )
        else:
            assert (e.status, e.epochs) == ("complete", 200)
            assert e.val_accuracy == pytest.approx(table.val_accuracy[row] / 100)

    from nas.search.selection import winners

    front = winners(study, EvaluationStore(study.search.storage).of_study(study.name))
    # A (88.60%, 9.645 ms), C (89.36%, 9.658 ms), E (87.69%, 3.911 ms): none dominates.
    assert [table.index_of(e.arch.cell) for e in front] == [13370, 6650, 398]


# -- digits searches --------------------------------------------------------------------


def _halving_study(tmp_path, **overrides):
    return study_in(
        tmp_path,
        **{
            "search.sampler": "random",
            "search.trials": 6,
            "train.epochs": 3,
            "data.limit": 300,
            "search.halving_min_epochs": 1,
            "search.halving_eta": 2,  # rungs at 1 and 2 epochs, 3 completes
            **overrides,
        },
    )


def _check_stopped_on_record(study, result) -> None:
    stored = optuna.load_study(study_name=study.name, storage=study.search.storage)
    evaluations = EvaluationStore(study.search.storage).of_study(study.name)
    by_arch = {e.arch_id: e for e in evaluations}
    # Distinct networks (the seeded sampler's first 6): one trial, one evaluation each.
    assert len(by_arch) == len(stored.trials) == 6
    assert set(by_arch) == {t.user_attrs["arch_id"] for t in stored.trials}
    assert {e.status for e in evaluations} <= {"complete", "stopped"}  # none left running
    stopped = [e for e in evaluations if e.status == "stopped"]
    assert stopped, (
        "halving stopped none of 6 trials (eta 2: the 2nd at a rung stops unless it dominates)"
    )
    for e in stopped:
        assert e.epochs in (1, 2) and e.reason == f"stopped after epoch {e.epochs} of 3"
        assert 0 <= e.val_accuracy <= 1 and e.seconds > 0
    assert all(e.epochs == 3 for e in evaluations if e.status == "complete")
    for t in stored.trials:  # Optuna's record says the same, trial by trial
        e = by_arch[t.user_attrs["arch_id"]]
        assert t.user_attrs["epochs"] == e.epochs  # what it paid for: up to its stop
        if e.status == "stopped":
            assert t.state == optuna.trial.TrialState.PRUNED and t.values is None
            assert t.user_attrs["stopped"] == f"after epoch {e.epochs}"
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE and t.values[0] == e.val_accuracy
    assert result.front
    assert {m.evaluation.arch_id for m in result.front} <= {
        e.arch_id for e in evaluations if e.status == "complete"
    }


def test_in_process_pareto_search_stops_trainings_at_rungs(tmp_path):
    from nas.search.pipeline import search

    study = _halving_study(tmp_path, **{"search.executor": "inprocess"})
    result = search(study)
    _check_stopped_on_record(study, result)
    stored = optuna.load_study(study_name=study.name, storage=study.search.storage)
    assert stored.trials[0].state == optuna.trial.TrialState.COMPLETE  # first at every rung


@pytest.mark.slow
def test_pareto_search_on_local_ray_stops_trainings_at_rungs(tmp_path):
    import ray

    from nas.search.pipeline import search

    study = _halving_study(tmp_path, **{"search.max_concurrent": 2})
    try:
        result = search(study, num_cpus=2)
    finally:
        ray.shutdown()
    _check_stopped_on_record(study, result)
