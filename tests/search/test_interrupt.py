"""Ctrl-C during a search (nas.core.interrupt): the first asks it to stop, the second aborts;
a stopped run leaves no Optuna trial running or queued. The same on Ray, through the
command line, is in test_pipeline.py."""

from __future__ import annotations

import os
import signal

import optuna
import pytest

from nas.core.interrupt import StopRequest, stop_on_interrupt
from nas.search.plan import Candidate
from nas.search.results import EvaluationStore
from nas.search.runner import run_inprocess
from nas.search.setup import prepare
from nas.space.searchspace import sample_random
from tests.search.test_pipeline import study_in


def test_the_first_sigint_asks_the_second_aborts_and_the_handler_comes_back(capfd):
    before = signal.getsignal(signal.SIGINT)
    with stop_on_interrupt(StopRequest(), "stopping (Ctrl-C again to abort)") as stop:
        assert not stop
        os.kill(os.getpid(), signal.SIGINT)
        assert stop  # asked, nothing raised
        assert capfd.readouterr().err == "\nstopping (Ctrl-C again to abort)\n"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_without_a_sigint_nothing_is_asked_and_the_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_interrupt(StopRequest()) as stop:
        pass
    assert not stop and signal.getsignal(signal.SIGINT) is before


def test_a_sigint_wakes_a_waiting_loop_at_once():
    """`nas report --watch N` sleeps in ``stop.wait(N)``: Ctrl-C ends it then and there."""
    import threading
    import time

    with stop_on_interrupt(StopRequest()) as stop:
        assert stop.wait(0.05) is False  # nobody asked: it sleeps its time out
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.perf_counter()
        assert stop.wait(30) is True
        assert time.perf_counter() - start < 10


def test_a_stopped_run_starts_nothing_more_and_leaves_nothing_queued(tmp_path):
    """Five queued networks, a stop asked after the first: one trained; the four it never
    started are marked FAIL with the reason (the next run must not take them for its
    own), and a later run, with another number of candidates, trains exactly its own,
    not what a killed run left queued."""
    study = study_in(tmp_path, **{"search.executor": "inprocess", "train.epochs": 1})
    setup = prepare(study)
    archs = [sample_random(setup.space, seed) for seed in range(5)]
    stop = StopRequest()
    run_inprocess(setup, candidates=[Candidate(a) for a in archs], on_trial=stop.set, stop=stop)
    trials = optuna.load_study(study_name="digits", storage=study.search.storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] + ["FAIL"] * 4
    assert all("abandoned" in t.user_attrs for t in trials[1:])
    assert len(EvaluationStore(study.search.storage).of_study("digits")) == 1

    # A run killed outright (no chance to clean up) leaves its queue behind.
    o_study = optuna.load_study(study_name="digits", storage=study.search.storage)
    o_study.enqueue_trial({"candidate_index": 1})
    later = [sample_random(setup.space, seed) for seed in (10, 11, 12)]
    _, errors = run_inprocess(setup, candidates=[Candidate(a) for a in later])
    assert not errors
    trained = {e.arch_id for e in EvaluationStore(study.search.storage).of_study("digits")}
    assert trained == {archs[0].id, *(a.id for a in later)}
    stale = o_study.trials[5]
    assert stale.state.name == "FAIL" and stale.user_attrs["abandoned"] == "queued by an older run"
