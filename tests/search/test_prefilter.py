"""The proxy pre-filter of a search: ``of`` candidates scored per proposal, the best
``keep`` trained, what it did recorded on the trials; and the study file's checks."""

from __future__ import annotations

import optuna
import pytest

from nas.core.errors import NasError
from nas.proxies import draw_batch
from nas.proxies import score as proxy_score
from nas.search import prefilter as prefilter_module
from nas.search.config import load_study
from nas.search.results import EvaluationStore
from nas.space.searchspace import decode
from tests.search.test_pipeline import study_in


def _run(tmp_path, monkeypatch, *, keep, of, trials, proxy="synflow"):
    """Search the micro space in process; returns the study, every score the pre-filter
    asked for (arch id, value), the trainings, and the Optuna trials."""
    from nas.search import trial as trial_module
    from nas.search.runner import run_inprocess
    from nas.search.setup import prepare

    scored: list[tuple[str, float]] = []

    def spy(arch, batch, names, *, seed):
        out = proxy_score(arch, batch, names, seed=seed)
        scored.append((arch.id, out[names[0]].value))
        return out

    trained: list[str] = []
    evaluate = trial_module.evaluate

    def count(arch, *args, **kw):
        trained.append(arch.id)
        return evaluate(arch, *args, **kw)

    monkeypatch.setattr(prefilter_module, "score", spy)
    monkeypatch.setattr(trial_module, "evaluate", count)
    study = study_in(
        tmp_path,
        **{
            "search.executor": "inprocess",
            "search.sampler": "random",
            "search.trials": trials,
            "train.epochs": 1,
            "search.prefilter": {"proxy": proxy, "keep": keep, "of": of},
        },
    )
    setup = prepare(study)
    run_inprocess(setup)
    o_study = optuna.load_study(study_name=study.name, storage=study.search.storage)
    return study, setup, scored, trained, o_study.get_trials()


def test_keep_one_of_four_scores_four_and_trains_the_best(tmp_path, monkeypatch):
    study, setup, scored, trained, trials = _run(tmp_path, monkeypatch, keep=1, of=4, trials=3)
    assert len(scored) == 3 * 4  # every proposal: four candidates scored
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    evs = EvaluationStore(study.search.storage).of_study(study.name)
    assert len(evs) == 3 and len(trained) == len({e.arch_id for e in evs if not e.reason})
    batch = draw_batch(setup.data, seed=study.search.seed)  # the plan's batch, drawn again
    for t, group in zip(trials, (scored[i : i + 4] for i in range(0, 12, 4)), strict=True):
        best_id, best = max(group, key=lambda g: g[1])  # first of equals, as the filter
        assert t.user_attrs["arch_id"] == best_id
        assert t.user_attrs["prefilter_value"] == pytest.approx(best)
        assert t.user_attrs["prefilter_rank"] == 1 and t.user_attrs["prefilter_of"] == 4
        assert t.user_attrs["prefilter_proxy"] == "synflow"
        # The trial's parameters are the trained network's (the sampler learns from it).
        arch = decode(setup.space, t.params)
        assert arch.id == best_id
        again = proxy_score(arch, batch, ["synflow"], seed=study.search.seed)["synflow"].value
        assert again == pytest.approx(best, rel=1e-9)


def test_keep_two_of_three_queues_the_runner_up_as_the_next_trial(tmp_path, monkeypatch):
    study, setup, scored, trained, trials = _run(tmp_path, monkeypatch, keep=2, of=3, trials=4)
    # Two proposals (trials 0 and 2), each three candidates; trials 1 and 3 were queued.
    assert len(scored) == 2 * 3 and len(trials) == 4
    assert [t.user_attrs["prefilter_rank"] for t in trials] == [1, 2, 1, 2]
    for proposal, queued in ((0, 1), (2, 3)):
        group = scored[3 * (proposal // 2) : 3 * (proposal // 2) + 3]
        ranked = sorted(group, key=lambda g: -g[1])
        assert trials[proposal].user_attrs["arch_id"] == ranked[0][0]
        assert trials[queued].user_attrs["arch_id"] == ranked[1][0]
        assert decode(setup.space, trials[queued].params).id == ranked[1][0]
    evs = EvaluationStore(study.search.storage).of_study(study.name)
    assert len(evs) == 4  # four trials, four evaluations: keep x proposals trained
    assert len(trained) == len({e.arch_id for e in evs if not e.reason})  # none reused
    from nas.report.page import render
    from nas.report.study import gather

    r = gather(study)  # the report says what the pre-filter did
    won = sum(t.user_attrs["prefilter_sampler_won"] for t in trials if t.number in (0, 2))
    assert r.prefilter == {
        "proxy": "synflow", "of": 3, "trials": 4, "proposals": 2, "sampler_won": won
    }  # fmt: skip
    assert "4 trials chosen by synflow" in render(r)


def test_a_runner_up_left_queued_at_the_end_is_not_trained(tmp_path, monkeypatch):
    _, _, scored, trained, trials = _run(
        tmp_path, monkeypatch, keep=2, of=3, trials=3, proxy="params"
    )
    # Proposals at trials 0 and 2; trial 2's runner-up was queued as trial 3, past the
    # run's three trials: marked failed as never started, not left for a later run.
    assert len(scored) == 2 * 3 and len(trained) == 3
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 + ["FAIL"]
    assert "never started" in trials[3].user_attrs["abandoned"]
    assert trials[3].user_attrs["prefilter_rank"] == 2


def test_a_size_proxy_needs_no_data(tmp_path, monkeypatch):
    from nas.model.cost import cost

    _, setup, scored, _, trials = _run(
        tmp_path, monkeypatch, keep=1, of=5, trials=2, proxy="params"
    )
    assert len(scored) == 10
    for t in trials:  # the largest of its five candidates
        group = scored[5 * t.number : 5 * t.number + 5]
        assert t.user_attrs["params"] == max(v for _, v in group)
        assert cost(decode(setup.space, t.params)).params == t.user_attrs["prefilter_value"]


@pytest.mark.parametrize(
    ("prefilter", "field", "words"),
    [
        ({"proxy": "zico", "keep": 1, "of": 4}, "search.prefilter.proxy", "unknown proxy"),
        ({"proxy": "synflow", "keep": 5, "of": 4}, "search.prefilter.keep", "cannot keep 5 of 4"),
        ({"proxy": "synflow", "keep": 0, "of": 4}, "search.prefilter.keep", "positive"),
        ({"proxy": "synflow", "keep": 1, "of": 4, "top": 2}, "search.prefilter.top", ""),
    ],
)
def test_a_bad_prefilter_names_its_field(tmp_path, prefilter, field, words):
    path = tmp_path / "s.toml"
    cells = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in prefilter.items())
    path.write_text(f'name = "s"\nspace = "tiny"\n[search]\nprefilter = {{ {cells} }}\n')
    with pytest.raises(NasError) as err:
        load_study(path)
    assert err.value.field == field and words in err.value.reason
    assert err.value.source == str(path)


def test_a_tabular_study_refuses_a_proxy_that_needs_images(tmp_path):
    path = tmp_path / "t.toml"
    body = 'name = "t"\nspace = "nasbench201"\n[tabular]\nbenchmark = "nasbench201"\n[search]\n'
    path.write_text(body + 'prefilter = { proxy = "synflow", keep = 1, of = 4 }\n')
    with pytest.raises(NasError) as err:
        load_study(path)
    assert err.value.field == "search.prefilter.proxy" and "tabular" in err.value.reason
    path.write_text(body + 'prefilter = { proxy = "params", keep = 1, of = 4 }\n')
    assert load_study(path).search.prefilter.proxy == "params"  # a size needs no images
    path.write_text(body + "prefilter = { keep = 1, of = 4 }\n")  # the default proxy
    assert load_study(path).search.prefilter.proxy == "macs"  # needs no images either


@pytest.mark.slow
def test_the_prefilter_on_local_ray(tmp_path):
    """Ray Tune's OptunaSearch runs the same define-by-run in its driver: the queued
    runner-up must reach the next trial there too, and every trial train what it records."""
    import ray

    from nas.search.runner import run_trials
    from nas.search.setup import prepare

    study = study_in(
        tmp_path,
        **{
            "search.executor": "ray",
            "search.sampler": "random",
            "search.trials": 4,
            "search.max_concurrent": 1,  # one at a time: the queue's order is the trials'
            "train.epochs": 1,
            "search.prefilter": {"proxy": "params", "keep": 2, "of": 3},
        },
    )
    setup = prepare(study)
    try:
        _, failed = run_trials(setup, num_cpus=2)
    finally:
        ray.shutdown()
    assert failed == []
    trials = optuna.load_study(study_name=study.name, storage=study.search.storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert [t.user_attrs["prefilter_rank"] for t in trials] == [1, 2, 1, 2]
    for best, runner_up in (trials[0:2], trials[2:4]):  # params: the larger one first
        assert best.user_attrs["prefilter_value"] >= runner_up.user_attrs["prefilter_value"]
    evs = {e.arch_id: e for e in EvaluationStore(study.search.storage).of_study(study.name)}
    for t in trials:
        arch = decode(setup.space, t.params)
        assert arch.id == t.user_attrs["arch_id"] and arch.id in evs
        assert evs[arch.id].params == t.user_attrs["prefilter_value"]
