"""Ctrl-C during a search (nas.core.interrupt): the first asks it to stop, the second aborts;
a stopped run leaves no Optuna trial running or queued. The same on Ray, through the
command line, is in test_pipeline.py."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import optuna
import pytest

from nas.core.interrupt import StopRequest, stop_on_interrupt
from nas.search.plan import Candidate
from nas.search.results import EvaluationStore
from nas.search.runner import run_inprocess
from nas.search.setup import prepare
from nas.space.searchspace import sample_random
from tests.search.test_pipeline import study_in


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt) for the test, whatever an earlier
    test in this worker process left installed; put back after."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, inherited)


def ctrl_c() -> None:
    """SIGINT to this very thread (the main one), as a terminal's Ctrl-C. raise_signal
    runs the Python handler before it returns; after os.kill the handler runs at the
    interpreter's next check for signals, which may fall in a finaliser the garbage
    collector runs just then, where a KeyboardInterrupt is printed and dropped: the
    `pytest.raises` below then saw nothing, depending on what earlier tests left."""
    signal.raise_signal(signal.SIGINT)


def test_the_first_sigint_asks_the_second_aborts_and_the_handler_comes_back(capfd, python_sigint):
    before = signal.getsignal(signal.SIGINT)
    with stop_on_interrupt(StopRequest(), "stopping (Ctrl-C again to abort)") as stop:
        assert not stop
        ctrl_c()
        assert stop  # asked, nothing raised
        assert capfd.readouterr().err == "\nstopping (Ctrl-C again to abort)\n"
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
    assert signal.getsignal(signal.SIGINT) is before


def test_without_a_sigint_nothing_is_asked_and_the_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_interrupt(StopRequest()) as stop:
        pass
    assert not stop and signal.getsignal(signal.SIGINT) is before


def asleep_lines() -> set[int]:
    """Lines of ``threading.Condition.wait`` where a waiting thread has let go of the
    condition's lock and blocks: a SIGINT handler that sets the Event may run there (one
    that ran while the lock is held would wait on it forever, in the very thread that
    holds it)."""
    import inspect
    import threading

    lines, first = inspect.getsourcelines(threading.Condition.wait)
    released = next(i for i, line in enumerate(lines) if "_release_save()" in line)
    return {first + i for i, line in enumerate(lines) if i > released and ".acquire(" in line}


def test_a_sigint_wakes_a_waiting_loop_at_once(python_sigint):
    """`nas report --watch N` sleeps in ``stop.wait(N)``: Ctrl-C ends it then and there.
    The signal goes to the main thread once it is seen asleep in the wait (a handshake,
    not a timer), so it interrupts the wait itself; a wait that only timed out returns
    False. Its 600 s are for a wake that never comes: no stall of a busy machine is that
    long, so only a broken wake fails here."""
    import sys
    import threading

    main = threading.main_thread().ident
    assert main is not None
    where = asleep_lines()
    assert where  # Condition.wait as this test knows it

    def asleep() -> bool:
        frame = sys._current_frames().get(main)
        return frame is not None and (
            frame.f_code is threading.Condition.wait.__code__ and frame.f_lineno in where
        )

    def press_ctrl_c_once_asleep() -> None:
        while not asleep():
            threading.Event().wait(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    with stop_on_interrupt(StopRequest()) as stop:
        assert stop.wait(0.05) is False  # nobody asked: it sleeps its time out
        presser = threading.Thread(target=press_ctrl_c_once_asleep, daemon=True)
        presser.start()
        assert stop.wait(600) is True
        presser.join()


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


HOLDING_THE_LOCK = """
import signal, sys
from nas.core.interrupt import StopRequest, stop_on_interrupt

with stop_on_interrupt(StopRequest()) as stop:
    # As if the SIGINT landed in Event.wait just where the main thread holds the
    # Event's lock: a handler that takes that lock waits on itself forever.
    with stop._event._cond:
        signal.raise_signal(signal.SIGINT)
        assert stop, "the stop is asked at once"
    assert stop.wait(600), "the waiters are woken"
print("woken")
"""


def test_a_sigint_while_the_main_thread_holds_the_events_lock_does_not_hang():
    """The handler takes no lock (it sets a flag and writes to a pipe; a helper thread
    sets the Event). Run in a child process: a deadlock there is a timeout here, not a
    hung test run. It takes about 1 s (an import of nas.core); 60 s is 60x that."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-c", HOLDING_THE_LOCK],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout.strip() == "woken", done.stderr
