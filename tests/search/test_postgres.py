"""A search whose study, evaluations and latency table live in PostgreSQL (the storage a
Ray cluster shares): Ray workers write at once, then the dashboard and the report read
it. The stores' own tests run on SQLite and PostgreSQL alike (the ``db_url`` fixture)."""

from __future__ import annotations

import json

import optuna
import pytest

from nas.search.results import EvaluationStore
from tests.report.test_dashboard import dashboard, trials_of
from tests.search.test_pipeline import study_in

pytest.importorskip("optuna_dashboard")


@pytest.mark.slow
def test_a_search_on_ray_with_postgresql_storage(tmp_path, postgres_url):
    import ray

    from nas.report.page import write_report
    from nas.search.pipeline import search

    study = study_in(
        tmp_path,
        **{
            "search.storage": postgres_url,
            "latency.db": postgres_url,
            "search.trials": 6,
            "train.epochs": 1,
            "confirm.top": 2,
            "confirm.seeds": 1,
        },
    )
    try:
        result = search(study, num_cpus=2)
    finally:
        ray.shutdown()
    stored = optuna.load_study(study_name="digits", storage=postgres_url)
    assert len(stored.trials) == 6 and all(t.state.name == "COMPLETE" for t in stored.trials)
    store = EvaluationStore(postgres_url)
    evaluations = store.of_study("digits")
    # One row per network and budget (a network sampled twice is reused, not trained again).
    sampled = {t.user_attrs["arch_id"] for t in stored.trials}
    assert len(evaluations) == len(sampled) and {e.arch_id for e in evaluations} == sampled
    assert len(store.of_study("digits-confirm1")) == 2
    front = json.loads((tmp_path / "exports" / "front.json").read_text())
    assert front and stored.user_attrs["front"] == front
    assert {m.evaluation.arch_id for m in result.front} == {r["arch_id"] for r in front}
    report = write_report(study)  # read back from PostgreSQL
    assert len(report.evaluations) == len(evaluations)
    assert (tmp_path / "exports" / "report.html").read_text().count("Plotly.newPlot") == 3

    study_file = tmp_path / "pg.toml"
    study_file.write_text(f'name = "digits"\n[search]\nstorage = "{postgres_url}"\n')
    with dashboard(study_file) as get:
        shown = trials_of(get, "digits")
    assert sorted(t["number"] for t in shown) == list(range(6))


def _open_all(url: str, barrier, errors) -> None:
    """A driver's first moments on a database: the evaluations table, then Optuna's."""
    from nas.core.db import optuna_storage

    barrier.wait(timeout=300)
    try:
        EvaluationStore(url)
        optuna_storage(url)
    except Exception as err:  # reported to the test, which names it
        errors.put(repr(err))


def test_processes_creating_the_tables_of_a_fresh_database_at_once_all_succeed(postgres_url):
    """Two drivers (or a driver and its Ray workers) opening a new PostgreSQL database
    at once: every one gets its tables, none dies of a catalogue race. Four processes
    released together by a barrier."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_open_all, args=(postgres_url, barrier, errors)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        # Each imports Optuna and SQLAlchemy (about 3 s with both cores busy) and opens
        # the database: 300 s is a 5x margin on all four starting one after the other.
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 4
    found = [errors.get() for _ in range(errors.qsize())]
    assert not found, found
    assert optuna.get_all_study_names(postgres_url) == []  # Optuna's schema is usable
