"""What a run left RUNNING in Optuna tells the evaluations table's story
(nas.search.settle): COMPLETE with the finished evaluation's values, else FAIL with
the reason."""

from __future__ import annotations

import optuna

from nas.core.db import optuna_storage
from nas.search.config import load_study
from nas.search.results import Evaluation, EvaluationStore
from nas.search.settle import settle_trials


def _evaluation(arch_id: str, status: str, acc: float) -> Evaluation:
    return Evaluation(
        study="digits", arch_id=arch_id, budget="b", status=status, val_accuracy=acc,
        epochs=2, seconds=1.0, latency_ms=0.25, params=100, macs=1000,
    )  # fmt: skip


def test_running_trials_are_told_what_their_evaluations_say(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = load_study("digits", {"search.storage": url})  # accuracy up, latency down
    storage = optuna_storage(url)
    o = optuna.create_study(
        study_name="digits", storage=storage, directions=study.objective.directions
    )
    store = EvaluationStore(url)
    store.record(_evaluation("done", "complete", 0.75))
    store.record(_evaluation("cut", "running", 0.5))
    store.record(_evaluation("bad", "diverged", 0.1))
    trials = []
    for arch_id in ("done", "cut", "bad", "none"):
        t = o.ask()
        t.set_user_attr("arch_id", arch_id)
        trials.append(t)
    o.tell(trials[0], [0.75, 0.25])  # told before the run ended: left alone
    before = o.trials[0].datetime_complete

    assert settle_trials(study, storage, first=1, why="its driver died") == (1, 2)
    done, cut, bad, none = o.trials
    assert done.datetime_complete == before
    assert cut.state.name == "FAIL" and cut.user_attrs["abandoned"] == "its driver died"
    # A training that ended on its own is told as it ended: diverged scores accuracy 0.
    assert bad.state.name == "COMPLETE" and bad.values == [0.0, 0.25]
    assert (
        "diverged" in bad.user_attrs["settled"] and "its driver died" in bad.user_attrs["settled"]
    )
    assert none.state.name == "FAIL" and none.user_attrs["abandoned"] == "its driver died"


def test_a_trial_cut_off_after_its_training_finished_is_complete(tmp_path):
    """Ctrl-C as a training finished: Optuna hears the evaluation's values."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = load_study("digits", {"search.storage": url})
    storage = optuna_storage(url)
    o = optuna.create_study(
        study_name="digits", storage=storage, directions=study.objective.directions
    )
    EvaluationStore(url).record(_evaluation("done", "complete", 0.75))
    o.ask().set_user_attr("arch_id", "done")
    assert settle_trials(study, storage, first=0, why="unfinished") == (1, 0)
    (t,) = o.trials
    assert t.state.name == "COMPLETE" and t.values == [0.75, 0.25]
