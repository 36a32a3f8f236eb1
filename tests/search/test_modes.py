"""Contract tests every registered objective mode gets for free (a new mode joins
automatically), then each mode's documented order on hand-made evaluations."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from nas.core.errors import NasError
from nas.core.objectives import METRICS, mnasnet_reward
from nas.search.config import ObjectiveConfig, StudyConfig
from nas.search.modes import MODES, ObjectiveMode, get_mode, register_mode
from nas.search.results import Evaluation
from nas.search.selection import ranked, trial_objective, winners

NAMES = sorted(MODES)


def objective(name: str, **changes) -> ObjectiveConfig:
    """Settings every mode accepts: accuracy and latency, a 1 ms budget."""
    return ObjectiveConfig(
        **{"mode": name, "metrics": ("accuracy", "latency"), "latency_budget_ms": 1.0, **changes}
    )


def study(name: str, **changes) -> StudyConfig:
    return StudyConfig(name="s", objective=objective(name, **changes))


def ev(i: int, acc: float, ms: float, status: str = "complete", params: int = 100) -> Evaluation:
    return Evaluation("s", f"{i:064x}", "b", status, acc, 2, 1.0, ms, params, 10 * params)


#: Accuracy against latency around the 1 ms budget, with ties, a dominated point and
#: evaluations that are not complete.
POOL = [
    ev(0, 0.90, 0.50),
    ev(1, 0.95, 0.90),
    ev(2, 0.97, 1.50),  # over the budget
    ev(3, 0.85, 0.40),
    ev(4, 0.80, 0.60),  # dominated by 0
    ev(5, 0.99, 0.30, status="stopped"),
    ev(6, 0.99, 0.20, status="rejected"),
    ev(7, 0.95, 0.95),  # tied in accuracy with 1, slower
]


@pytest.mark.parametrize("name", NAMES)
def test_a_mode_is_registered_under_its_name_with_a_one_line_summary(name):
    mode = MODES[name]
    assert isinstance(mode, ObjectiveMode) and mode.name == name and get_mode(name) is mode
    assert mode.summary.strip() and "\n" not in mode.summary


@pytest.mark.parametrize("name", NAMES)
def test_a_mode_accepts_its_settings_and_refuses_a_missing_budget(name):
    obj = objective(name)
    assert obj.rules is MODES[name]
    if MODES[name].needs_budget:
        with pytest.raises(NasError) as err:
            objective(name, latency_budget_ms=0.0)
        assert err.value.field == "latency_budget_ms" and name in err.value.reason
    else:
        objective(name, latency_budget_ms=0.0)


@pytest.mark.parametrize("name", NAMES)
def test_directions_match_the_metrics_a_trial_reports(name):
    obj = objective(name)
    mode = obj.rules
    names, directions = mode.metric_names(obj), mode.directions(obj)
    assert len(names) == len(directions) >= 1 and obj.directions == directions
    assert set(directions) <= {"maximize", "minimize"}
    reported = trial_objective(study(name), 0.9, 0.5, 100, 1000)
    assert set(names) <= set(reported)  # Optuna is told these values, by these names
    for m, d in zip(names, directions, strict=True):
        assert d == METRICS.get(m, "maximize")  # "objective" is a score: higher is better
    assert mode.multi_objective == (len(names) > 1)


@pytest.mark.parametrize("name", NAMES)
def test_a_score_rises_with_accuracy_and_never_with_latency(name):
    obj = objective(name)
    for ms in (0.3, 1.0, 3.0):
        assert obj.rules.score(obj, 0.9, ms) > obj.rules.score(obj, 0.8, ms)
        assert obj.rules.score(obj, 0.9, ms) >= obj.rules.score(obj, 0.9, ms * 2)


@pytest.mark.parametrize("name", NAMES)
def test_rejection_is_exactly_the_latency_limit(name):
    obj = objective(name)
    limit = obj.rules.latency_limit(obj)
    for ms in (0.1, 1.0, 1.0001, 50.0):
        assert obj.rules.rejects(obj, ms) == (limit is not None and ms > limit)


@pytest.mark.parametrize("name", NAMES)
def test_ranking_keeps_complete_evaluations_within_the_limit_and_winners_come_from_it(name):
    s = study(name)
    obj = s.objective
    order = ranked(s, POOL)
    assert all(e.status == "complete" and not obj.rules.rejects(obj, e.latency_ms) for e in order)
    kept = [e for e in POOL if e.status == "complete" and not obj.rules.rejects(obj, e.latency_ms)]
    assert sorted(e.arch_id for e in order) == sorted(e.arch_id for e in kept)
    won = winners(s, POOL)
    assert won and order[0] in won and all(w in order for w in won)
    # A point worse in every metric than another never ranks above it.
    at = {e.arch_id: i for i, e in enumerate(order)}
    for a, b in itertools.permutations(order, 2):
        if a.val_accuracy > b.val_accuracy and a.latency_ms < b.latency_ms:
            assert at[a.arch_id] < at[b.arch_id], (a.arch_id[-1], b.arch_id[-1])


@pytest.mark.parametrize("name", NAMES)
def test_nothing_complete_ranks_nothing(name):
    s = study(name)
    unfinished = [e for e in POOL if e.status != "complete"]
    assert ranked(s, unfinished) == [] and winners(s, unfinished) == []


def ids(evaluations) -> list[int]:
    return [int(e.arch_id, 16) for e in evaluations]


def test_pareto_ranks_by_front_then_accuracy_and_reads_its_front_cheapest_first():
    s = study("pareto")
    assert ids(ranked(s, POOL)) == [2, 1, 0, 3, 7, 4]
    assert ids(winners(s, POOL)) == [3, 0, 1, 2]


def test_budget_ranks_by_accuracy_within_the_budget():
    s = study("budget")
    assert ids(ranked(s, POOL)) == [1, 7, 0, 3, 4]
    assert ids(winners(s, POOL)) == [1]


def test_reward_ranks_by_mnasnets_reward():
    s = study("reward")
    expected = sorted(
        (e for e in POOL if e.status == "complete"),
        key=lambda e: mnasnet_reward(e.val_accuracy, e.latency_ms, 1.0, -0.07),
        reverse=True,
    )
    assert ids(ranked(s, POOL)) == ids(expected) == [1, 7, 0, 2, 3, 4]


def test_accuracy_ranks_by_accuracy_alone():
    s = study("accuracy")
    assert ids(ranked(s, POOL)) == [2, 1, 7, 0, 3, 4]
    assert ids(winners(s, POOL)) == [2]


def test_an_unknown_mode_names_the_field_and_the_known_ones():
    with pytest.raises(NasError) as err:
        objective("fastest")
    assert err.value.field == "mode"
    assert all(n in err.value.reason for n in NAMES)


def test_a_name_is_registered_once():
    @dataclasses.dataclass(frozen=True)
    class Again(ObjectiveMode):
        name = "pareto"
        summary = "a second pareto"

    with pytest.raises(RuntimeError, match="registered twice"):
        register_mode(Again)
    assert type(MODES["pareto"]).__name__ == "Pareto"
