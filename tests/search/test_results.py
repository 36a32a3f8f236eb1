"""The evaluations store: dedup by budget, and fronts from complete evaluations only."""

from __future__ import annotations

import itertools

import pytest

from nas.core.errors import NasError
from nas.core.pareto import dominates
from nas.search.config import load_study
from nas.search.results import Evaluation, EvaluationStore, budget_key, front_of
from nas.space.searchspace import load_space, sample_random


@pytest.fixture
def store(db_url) -> EvaluationStore:
    return EvaluationStore(db_url)


def ev(
    study: str, seed: int, acc: float, ms: float, status: str = "complete", budget: str = "b1"
) -> Evaluation:
    arch = sample_random(load_space("tiny"), seed)
    return Evaluation(
        study, arch.id, budget, status, acc, 8, 1.0, ms, 1000, 2000, arch_json=arch.to_json()
    )


def test_budget_key_is_stable_and_sensitive():
    study = load_study("digits")
    a = budget_key(data=study.data, train=study.train, resolution=8)
    assert a == budget_key(data=study.data, train=study.train, resolution=8)
    assert a != budget_key(data=study.data, train=study.train.__class__(epochs=3), resolution=8)
    assert a != budget_key(data=study.data, train=study.train, resolution=16)


def test_record_lookup_and_dedup_across_studies(store):
    first = ev("s1", 0, 0.9, 1.0)
    assert store.record(first)
    assert not store.record(first)  # the same row again is kept, not duplicated
    found = store.lookup(first.arch_id, "b1")
    assert found == first and found.arch.id == first.arch_id
    assert store.lookup(first.arch_id, "b2") is None  # another budget: train again
    stopped = ev("s2", 1, 0.5, 1.0, status="stopped")
    store.record(stopped)
    assert store.lookup(stopped.arch_id, "b1") is None  # partial training is never reused


def test_a_running_training_is_replaced_by_its_end_or_settled_as_stopped(store):
    """Each epoch of a training the scheduler may stop is on record as ``running``; its
    final record replaces it; what is still running when the run ends becomes stopped."""
    from dataclasses import replace

    base = ev("s", 0, 0.0, 1.0)
    for epoch, acc in ((1, 0.4), (2, 0.6)):
        assert store.record(replace(base, status="running", val_accuracy=acc, epochs=epoch,
                                    reason=f"epoch {epoch} of 8"))  # fmt: skip
    (row,) = store.of_study("s")
    assert (row.status, row.epochs, row.val_accuracy) == ("running", 2, 0.6)
    assert store.lookup(base.arch_id, "b1") is None  # never reused while running
    assert store.record(base)  # the training's end replaces its progress
    assert store.of_study("s") == [base]
    assert not store.record(replace(base, status="running", epochs=3))  # a finished row stays
    assert store.settle_running("s") == 0

    cut = ev("s", 1, 0.0, 1.0)
    store.record(replace(cut, status="running", val_accuracy=0.5, epochs=2, reason="epoch 2 of 8"))
    other = ev("t", 1, 0.0, 1.0)
    store.record(replace(other, status="running", epochs=1, reason="epoch 1 of 8"))
    assert store.settle_running("s") == 1
    stopped = {e.arch_id: e for e in store.of_study("s")}[cut.arch_id]
    assert (stopped.status, stopped.epochs, stopped.val_accuracy) == ("stopped", 2, 0.5)
    assert stopped.reason == "stopped after epoch 2 of 8"
    assert store.of_study("t")[0].status == "running"  # another study's run is its own
    assert store.lookup(cut.arch_id, "b1") is None
    # Proposed again later, the stopped network trains again: that training counts.
    assert store.record(replace(cut, status="running", val_accuracy=0.3, epochs=1))
    assert store.record(replace(cut, val_accuracy=0.7))
    again = {e.arch_id: e for e in store.of_study("s")}[cut.arch_id]
    assert (again.status, again.epochs, again.val_accuracy) == ("complete", 8, 0.7)


def test_front_uses_complete_evaluations_only(store):
    rows = [
        ev("s", 0, 0.90, 2.0),
        ev("s", 1, 0.80, 1.0),
        ev("s", 2, 0.85, 3.0),  # dominated by the first
        ev("s", 3, 0.99, 0.5, status="stopped"),  # would dominate everything if counted
        ev("s", 4, 0.95, 0.4, status="diverged"),
        ev("other", 5, 1.0, 0.1),  # another study
    ]
    for r in rows:
        store.record(r)
    front = front_of(store.of_study("s"), ["accuracy", "latency"])
    assert {e.arch_id for e in front} == {rows[0].arch_id, rows[1].arch_id}
    # Brute force: no complete evaluation of the study dominates a front member.
    complete = [r for r in rows[:3]]
    for member, other in itertools.product(front, complete):
        assert not dominates(
            (other.val_accuracy, other.latency_ms),
            (member.val_accuracy, member.latency_ms),
            ["maximize", "minimize"],
        )


def test_bad_storage_urls(tmp_path):
    with pytest.raises(NasError, match="invalid database URL"):
        EvaluationStore("nonsense://")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00" * 4096 + b"not a database")
    with pytest.raises(NasError, match="cannot open the storage"):
        EvaluationStore(f"sqlite:///{junk}")


def test_lookup_is_indexed_also_in_a_database_made_before_the_index(tmp_path):
    """Every trial looks its network up across all studies: that query must use the
    (arch_id, budget) index, not scan the table (SQLite's own query plan says which),
    and a database whose table was made without the index gets it when opened."""
    from sqlalchemy import MetaData, Table, create_engine, inspect
    from sqlalchemy.dialects import sqlite

    from nas.search.results import _finished_training, evaluations

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Table("nas_evaluations", MetaData(), *(c._copy() for c in evaluations.columns))
    engine = create_engine(url)
    old.metadata.create_all(engine)
    assert inspect(engine).get_indexes("nas_evaluations") == []
    store = EvaluationStore(url)
    first = ev("s1", 0, 0.9, 1.0)
    store.record(first)
    indexes = inspect(engine).get_indexes("nas_evaluations")
    assert [(i["name"], i["column_names"]) for i in indexes] == [
        ("ix_nas_evaluations_arch_budget", ["arch_id", "budget"])
    ]
    query = _finished_training(first.arch_id, "b1").compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with engine.connect() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")]
    assert any("USING INDEX ix_nas_evaluations_arch_budget" in step for step in plan), plan
    assert store.lookup(first.arch_id, "b1") == first
    engine.dispose()


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_count_trials_agrees_with_optuna(tmp_path, kind):
    """One SQL count (or, in memory, Optuna's own) against Optuna's count, all states and
    each one; another study in the same storage is not counted."""
    import optuna
    from optuna.trial import TrialState

    from nas.core.db import optuna_storage
    from nas.search.results import count_trials

    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if kind == "file"
        else f"sqlite:///file:count-{tmp_path.name}?mode=memory&cache=shared&uri=true"
    )
    storage = optuna_storage(url)
    study = optuna.create_study(study_name="s", storage=storage)
    other = optuna.create_study(study_name="other", storage=storage)
    for value in (1.0, 2.0, 3.0):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.ask()  # running
    study.enqueue_trial({})  # waiting
    other.tell(other.ask(), 0.0)
    assert count_trials(storage, "s") == 6 == len(study.get_trials())
    for state in TrialState:
        assert count_trials(storage, "s", state) == len(study.get_trials(states=[state]))
    assert count_trials(storage, "s", TrialState.COMPLETE) == 3
