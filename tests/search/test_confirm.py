"""Confirming the best candidates (nas.search.confirm): which networks are retrained, how their
trainings are pooled, and a real search that confirms its front."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import optuna
import pytest

from nas.core.objectives import METRICS
from nas.core.pareto import dominates, pareto_ranks
from nas.search.config import load_study
from nas.search.confirm import _pool, final_evaluations
from nas.search.pipeline import search
from nas.search.results import Evaluation, EvaluationStore
from nas.search.selection import budget_of, ranked, sub_study, winners
from tests.micro import micro_latency_db, write_micro_space


def ev(arch_id: str, acc: float, ms: float, status: str = "complete", **kw) -> Evaluation:
    return Evaluation("s", arch_id, "b", status, acc, 2, 1.0, ms, 100, 1000, **kw)


def test_pareto_ranks_peel_fronts():
    # (accuracy up, latency down): A and B are the front, C is dominated by A only,
    # D by C (and A), E by everything.
    pts = {"A": (0.9, 1.0), "B": (0.8, 0.5), "C": (0.85, 1.2), "D": (0.8, 1.5), "E": (0.1, 9)}
    ranks = pareto_ranks(list(pts.values()), ["maximize", "minimize"])
    assert dict(zip(pts, ranks, strict=True)) == {"A": 0, "B": 0, "C": 1, "D": 2, "E": 3}


def test_pareto_ranks_against_the_definition():
    """Rank r: dominated by some point of rank r-1 and by none of rank >= r."""
    import random

    rng = random.Random(0)
    dirs = ["maximize", "minimize", "minimize"]
    pts = [(rng.randint(0, 5), rng.randint(0, 5), rng.randint(0, 5)) for _ in range(60)]
    ranks = pareto_ranks(pts, dirs)
    for i, j in itertools.permutations(range(len(pts)), 2):
        if dominates(pts[j], pts[i], dirs):
            assert ranks[j] < ranks[i]
    for i, r in enumerate(ranks):
        if r > 0:
            assert any(ranks[j] == r - 1 and dominates(pts[j], pts[i], dirs) for j in range(60))


def test_ranked_orders_by_front_then_accuracy(tmp_path):
    study = load_study("digits")
    evs = [ev("c", 0.85, 1.2), ev("a", 0.9, 1.0), ev("x", 0.99, 0.1, status="diverged"),
           ev("b", 0.8, 0.5), ev("d", 0.8, 1.5)]  # fmt: skip
    assert [e.arch_id for e in ranked(study, evs)] == ["a", "b", "c", "d"]
    assert {e.arch_id for e in winners(study, evs)} == {"a", "b"}
    budget = load_study("digits", {"objective.mode": "budget", "objective.latency_budget_ms": 1.1})
    assert [e.arch_id for e in ranked(budget, evs)] == ["a", "b"]  # c, d are over budget
    assert [e.arch_id for e in winners(budget, evs)] == ["a"]


def test_the_front_reads_as_its_trade_off():
    """Cheapest first, each next member costlier and more accurate, whatever the trial
    order; with params as a second cost, latency still leads."""
    study = load_study("digits")
    evs = [ev("m", 0.90, 2.0), ev("f", 0.70, 0.5), ev("s", 0.95, 4.0), ev("n", 0.80, 1.0),
           ev("x", 0.60, 3.0)]  # fmt: skip
    front = winners(study, evs)
    assert [e.arch_id for e in front] == ["f", "n", "m", "s"]
    lat = [e.latency_ms for e in front]
    acc = [e.val_accuracy for e in front]
    assert lat == sorted(lat) and acc == sorted(acc)
    three = load_study("digits", {"objective.metrics": ["accuracy", "latency", "params"]})
    evs3 = [replace(e, params=p) for e, p in zip(evs, [10, 50, 1, 20, 5], strict=True)]
    assert [e.arch_id for e in winners(three, evs3)] == ["f", "n", "m", "x", "s"]


def test_pool_means_the_trainings_and_keeps_the_best_weights():
    first = ev("n", 0.90, 1.0, weights="w0")
    again = [
        ev("n", 0.96, 1.0, weights="w1"),
        ev("n", 0.0, 1.0, status="diverged", weights=""),  # counts as 0
        ev("n", 0.5, 1.0, status="failed"),  # raised: not a training of the network
    ]
    pooled = _pool(first, again)
    assert pooled.val_accuracy == pytest.approx((0.90 + 0.96 + 0.0) / 3)
    assert pooled.weights == "w1" and pooled.status == "complete" and pooled.study == "s"
    assert pooled.reason == (
        "confirmed: mean of 3 trainings (0.9000, 0.9600, 0.0000); weights of the best"
    )


def test_a_study_never_confirmed_falls_back_to_its_single_trainings(tmp_path):
    """An interrupted search (or one run before its study asked for confirmation) still
    has a winner for `nas scale`, and the caller is told the front is unconfirmed."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = load_study("digits", {"search.storage": url})
    assert study.confirm.top > 0
    store = EvaluationStore(url)
    for e in (ev("a", 0.9, 1.0), ev("b", 0.8, 0.5), ev("c", 0.85, 1.2)):
        store.record(replace(e, study=study.name))
    notes: list[str] = []
    found = final_evaluations(study, store, note=notes.append)
    assert sorted(e.arch_id for e in found) == ["a", "b", "c"]
    assert {e.arch_id for e in winners(study, found)} == {"a", "b"}
    assert notes == [
        f"study {study.name} has no confirmation runs in {url}: choosing among its single trainings"
    ]
    # Once one confirmation is stored, only confirmed networks count.
    store.record(replace(ev("b", 0.7, 0.5), study=f"{study.name}-confirm1"))
    found = final_evaluations(study, store, note=notes.append)
    assert [e.arch_id for e in found] == ["b"] and len(notes) == 1
    assert found[0].val_accuracy == pytest.approx(0.75)


def test_confirm_is_validated():
    from nas.core.errors import NasError

    with pytest.raises(NasError, match=r"confirm\.top: must be an integer >= 0"):
        load_study("digits", {"confirm.top": -1})
    with pytest.raises(NasError, match=r"confirm\.seeds: must be a positive integer"):
        load_study("digits", {"confirm.top": 2, "confirm.seeds": 0})
    with pytest.raises(NasError, match=r"confirm\.top: a tabular study"):
        load_study("nb201_cifar10", {"confirm.top": 2})


@pytest.mark.slow
def test_a_search_confirms_its_best_candidates(tmp_path):
    """In process: 5 trials, the 3 best confirmed with 2 more seeds; the front is chosen
    among those 3 by their mean, and each member carries its best training's weights."""
    study = load_study(
        "digits",
        {
            "space": str(write_micro_space(tmp_path)),
            "search.storage": f"sqlite:///{tmp_path / 'studies.db'}",
            "latency.db": micro_latency_db(tmp_path),
            "export_dir": str(tmp_path / "exports"),
            "search.executor": "inprocess",
            "search.trials": 5,
            "train.epochs": 2,
            "data.limit": 600,
            "confirm.top": 3,
            "confirm.seeds": 2,
            "hyperparameters": [{"name": "lr", "choices": [0.03, 0.1]}],
        },
    )
    ticks: list[int] = []
    result = search(study, on_trial=lambda: ticks.append(1))
    assert len(ticks) == 5 + 3 * 2  # the progress bar counts the confirmations
    store = EvaluationStore(study.search.storage)
    own = store.of_study(study.name)
    firsts: dict[str, Evaluation] = {}
    for e in ranked(study, own):  # a network found with two recipes counts once
        firsts.setdefault(e.arch_id, e)
    best3 = list(firsts)[:3]
    runs = {a: [firsts[a]] for a in best3}
    # Each confirmation trains with the learning rate its network was found with.
    lr = {}
    for t in optuna.load_study(study_name=study.name, storage=study.search.storage).trials:
        if (
            t.user_attrs["arch_id"] in best3
            and budget_of(
                study, {"lr": t.params["lr"]}, firsts[t.user_attrs["arch_id"]].arch.resolution
            )
            == firsts[t.user_attrs["arch_id"]].budget
        ):
            lr[t.user_attrs["arch_id"]] = t.params["lr"]
    assert set(lr) == set(best3)
    for j in (1, 2):
        sub = store.of_study(f"{study.name}-confirm{j}")
        assert sorted(e.arch_id for e in sub) == sorted(best3)
        again = sub_study(
            study, f"confirm{j}", train=replace(study.train, seed=study.train.seed + j)
        )
        for e in sub:
            res = e.arch.resolution
            assert e.budget == budget_of(again, {"lr": lr[e.arch_id]}, res)
            assert e.budget != budget_of(again, {"lr": 0.13 - lr[e.arch_id]}, res)
            assert e.budget != firsts[e.arch_id].budget  # another seed
            runs[e.arch_id].append(e)
    pooled = {e.arch_id: e for e in final_evaluations(study, store)}
    assert set(pooled) == set(best3)
    for a, rs in runs.items():
        scores = [r.val_accuracy if r.status == "complete" else 0.0 for r in rs]
        assert pooled[a].val_accuracy == pytest.approx(sum(scores) / 3)
        assert pooled[a].weights == rs[scores.index(max(scores))].weights
    # The front: exactly the non-dominated pooled candidates.
    directions = [METRICS[m] for m in study.objective.metrics]
    pts = {a: (p.val_accuracy, p.latency_ms) for a, p in pooled.items()}
    expected = {a for a in pts if not any(dominates(q, pts[a], directions) for q in pts.values())}
    assert {m.evaluation.arch_id for m in result.front} == expected
    written = json.loads((tmp_path / "exports" / "front.json").read_text())
    assert {r["arch_id"] for r in written} == expected
    for r in written:
        assert r["val_accuracy"] == pytest.approx(pooled[r["arch_id"]].val_accuracy)
