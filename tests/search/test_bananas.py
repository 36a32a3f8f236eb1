"""The BANANAS-style sampler: its acquisition functions against independent oracles,
its surrogate on a known function, dedup, determinism, and a search against random."""

from __future__ import annotations

import math
import pickle

import numpy as np
import optuna
import pytest

from nas.core.errors import NasError
from nas.core.pareto import hypervolume_2d
from nas.search.config import load_study
from nas.search.samplers import ORIGIN_KEY, BananasSampler, get_sampler
from nas.search.samplers._bananas import expected_improvement, hypervolume_improvement_2d
from nas.search.samplers._ensemble import fit_ensemble

NAMES = ("a", "b", "c", "d")
CHOICES = (0, 1, 2, 3, 4)
#: Small and quick: the tests need the sampler's rules, not its best settings.
QUICK = {"members": 3, "hidden": (16,), "steps": 60}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_expected_improvement_matches_numerical_integration():
    grid = np.linspace(-12, 12, 200_001)
    for mean, std, best in ((0.0, 1.0, 0.0), (1.0, 0.5, 2.0), (-1.0, 2.0, -3.0), (3.0, 0.1, 1.0)):
        density = np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        oracle = np.trapezoid(np.maximum(grid - best, 0.0) * density, grid)
        got = expected_improvement(np.array([mean]), np.array([std]), best)[0]
        assert got == pytest.approx(oracle, rel=1e-6, abs=1e-9)
    # No spread: the plain improvement.
    assert list(expected_improvement(np.array([2.0, 0.5]), np.zeros(2), 1.0)) == [1.0, 0.0]


def test_hypervolume_improvement_is_the_difference_of_two_hypervolumes():
    rng = np.random.default_rng(0)
    directions = ["maximize", "maximize"]
    for _ in range(20):
        front = rng.random((int(rng.integers(0, 8)), 2))
        candidates = rng.random((30, 2))
        ref = rng.random(2) * 0.5
        base = hypervolume_2d(front, ref, directions) if len(front) else 0.0
        oracle = [
            hypervolume_2d(np.vstack([front, c[None]]), ref, directions) - base for c in candidates
        ]
        got = hypervolume_improvement_2d(candidates, front, ref)
        np.testing.assert_allclose(got, oracle, atol=1e-12)


def test_the_ensemble_learns_a_function_of_one_hot_parameters():
    rng = np.random.default_rng(1)
    idx = rng.integers(5, size=(400, 4))
    x = np.zeros((400, 20))
    x[np.arange(400)[:, None], idx + np.arange(4) * 5] = 1.0
    y = idx.sum(axis=1) + 2.0 * (idx[:, 0] == idx[:, 1])  # additive plus an interaction
    model = fit_ensemble(x[:300], y[:300], np.random.default_rng(0), steps=300)
    pred = model.predict(x[300:])
    assert pred.shape == (5, 100, 1)
    assert np.corrcoef(pred.mean(axis=0)[:, 0], y[300:])[0, 1] > 0.95
    assert (pred.std(axis=0) > 0).all()  # members differ: there is a spread


def _objective(trial: optuna.Trial) -> float:
    x = [trial.suggest_categorical(n, CHOICES) for n in NAMES]
    return float(sum(x) + 3 * (x[0] == x[1]))  # optimum 19 at (4, 4, 4, 4), one of 625


def _until_optimum(sampler, cap: int) -> int:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(cap):
        study.optimize(_objective, n_trials=1)
        if study.trials[-1].value == 19:
            return len(study.trials)
    return cap


def test_finds_the_optimum_of_a_small_problem_far_sooner_than_random_search():
    seeds = range(5)
    bananas = [_until_optimum(BananasSampler(seed=s, n_startup=5, **QUICK), 100) for s in seeds]
    rnd = [_until_optimum(optuna.samplers.RandomSampler(seed=s), 100) for s in seeds]
    # Random needs 625 / 2 trials on average (capped here at 100).
    assert np.mean(bananas) < 0.5 * np.mean(rnd)
    assert max(bananas) < 100


def _multiset(params) -> tuple:
    return tuple(sorted(params[n] for n in ("a", "b", "c")))


def test_never_proposes_a_network_twice_until_the_space_is_exhausted():
    def objective(trial):
        return float(sum(trial.suggest_categorical(n, (0, 1, 2, 3)) for n in ("a", "b", "c")))

    sampler = BananasSampler(seed=0, n_startup=3, key=_multiset, **QUICK)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=20)  # 20 multisets of 3 values out of 4
    keys = [_multiset(t.params) for t in study.trials]
    assert len(set(keys)) == len(keys) == 20
    assert {t.system_attrs.get(ORIGIN_KEY) for t in study.trials[3:]} <= {"surrogate"}
    with pytest.raises(NasError, match="every point"):
        study.optimize(objective, n_trials=1)


def _runs(seed: int, directions: list[str], copy: bool = False) -> list[dict]:
    def objective(trial):
        x = [trial.suggest_categorical(n, CHOICES) for n in NAMES]
        values = (float(sum(x) + 3 * (x[0] == x[1])), float(2 * x[0] + x[2]))
        return values[: len(directions)]

    sampler = BananasSampler(seed=seed, n_startup=4, **QUICK)
    if copy:  # Ray Tune pickles the searcher with its sampler
        sampler = pickle.loads(pickle.dumps(sampler))
    study = optuna.create_study(directions=directions, sampler=sampler)
    study.optimize(objective, n_trials=14)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "minimize"]])
def test_seeded_and_picklable(directions):
    first = _runs(3, directions)
    assert first == _runs(3, directions) == _runs(3, directions, copy=True)
    assert first != _runs(4, directions)


def _pareto_share(sampler, n: int) -> float:
    """Hypervolume of the points found over that of the whole space's front, against
    the space's median in both objectives (as the NAS-Bench-201 benchmark measures)."""

    def values(x):
        return float(sum(x) + 3 * (x[0] == x[1])), float(2 * x[0] + x[1] + x[2])

    def objective(trial):
        return values([trial.suggest_categorical(m, CHOICES) for m in NAMES])

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=n)
    space = np.array([values(x) for x in np.ndindex(*(len(CHOICES),) * len(NAMES))])
    ref = np.median(space, axis=0)
    directions = ["maximize", "minimize"]
    found = [t.values for t in study.trials]
    if isinstance(sampler, BananasSampler):
        keys = [tuple(sorted(t.params.items())) for t in study.trials]
        assert len(set(keys)) == len(keys)
    return hypervolume_2d(found, ref, directions) / hypervolume_2d(space, ref, directions)


def test_pareto_mode_finds_more_of_the_front_than_random_search():
    seeds = range(3)
    bananas = [_pareto_share(BananasSampler(seed=s, n_startup=8), 40) for s in seeds]
    rnd = [_pareto_share(optuna.samplers.RandomSampler(seed=s), 40) for s in seeds]
    assert np.mean(bananas) > np.mean(rnd) + 0.1
    assert min(bananas) > 0.8  # measured 0.89-0.94


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"members": 0}, "members"),
        ({"refit_every": 0}, "refit_every"),
        ({"refit_fraction": 1.0}, "refit_fraction"),
        ({"kappa": -1.0}, "kappa"),
        ({"n_mutations": 0, "n_random": 0}, "n_mutations"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(NasError) as err:
        BananasSampler(**kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("name", ["nb201_cifar10", "nb201_pixel3"])
def test_the_bundled_nb201_studies_default_to_bananas(name):
    """Both NAS-Bench-201 studies default to the sampler that measured best in their
    mode (benchmarks/README.md, "Samplers on NAS-Bench-201 ..."); it must be one that
    serves that mode."""
    study = load_study(name)
    assert study.search.sampler == "bananas"
    assert get_sampler(study.search.sampler).multi_objective or len(study.objective.directions) == 1


#: Hand-worked cells (edges in nb201_cell.PARAM_NAMES order) and their live form.
C3, C1, SK, AP, NO = "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none"
LIVE_CELLS = [
    # node 2 has no input: its edge into the output is dead
    ((C3, NO, NO, SK, C1, AP), (C3, NO, NO, SK, C1, NO)),
    # node 1 has no input: both its outgoing edges are dead
    ((NO, C3, C1, NO, SK, C3), (NO, C3, NO, NO, NO, C3)),
    # node 1 reaches nothing: its incoming edge is dead
    ((C3, C1, NO, SK, NO, C3), (NO, C1, NO, SK, NO, C3)),
    # nothing reaches the output: the zero network
    ((C3, C3, C3, NO, NO, NO), (NO,) * 6),
    # every edge counts
    ((C3, C3, C1, SK, AP, C3), (C3, C3, C1, SK, AP, C3)),
]


def test_the_canonical_form_sets_a_cells_dead_edges_to_none():
    from nas.model.nb201_cell import PARAM_NAMES
    from nas.search.plan import _NetworkKey
    from nas.space.searchspace import encode, load_space, sample_random

    key = _NetworkKey(load_space("nasbench201"), None)
    for cell, live in LIVE_CELLS:
        params = {**dict(zip(PARAM_NAMES, cell, strict=True)), "resolution": 32, "lr": 0.1}
        assert key.canonical(params) == {
            **dict(zip(PARAM_NAMES, live, strict=True)),
            "resolution": 32,
            "lr": 0.1,
        }
    partial = dict(zip(PARAM_NAMES[:3], (NO, NO, NO), strict=True))
    assert key.canonical(partial) == partial
    tiny = load_space("tiny")
    params = encode(tiny, sample_random(tiny, 0))
    assert _NetworkKey(tiny, None).canonical(params) == params


def test_params_of_one_network_encode_alike_for_the_surrogate():
    from nas.model.nb201_cell import OPS, PARAM_NAMES
    from nas.search.plan import _NetworkKey
    from nas.search.samplers import SamplerRequest
    from nas.space.searchspace import load_space

    canonical = _NetworkKey(load_space("nasbench201"), None).canonical
    sampler = get_sampler("bananas").build(SamplerRequest(seed=0, trials=10, canonical=canonical))
    assert sampler.canonical is canonical
    space = {n: optuna.distributions.CategoricalDistribution(OPS) for n in PARAM_NAMES}
    rows = np.array([[OPS.index(op) for op in cell] for cell, _ in LIVE_CELLS])
    lives = np.array([[OPS.index(op) for op in live] for _, live in LIVE_CELLS])
    np.testing.assert_array_equal(
        sampler._encode(space, PARAM_NAMES, rows),
        BananasSampler()._encode(space, PARAM_NAMES, lives),
    )
    # The memo of canonical rows is not part of a pickled sampler.
    assert pickle.loads(pickle.dumps(sampler))._canonical_rows == {}


def test_a_dead_edge_keeps_its_op_where_none_is_not_a_choice(tmp_path):
    """A space may leave ``none`` out of an edge: the canonical form stays in the space."""
    from pathlib import Path

    from nas.model.nb201_cell import PARAM_NAMES
    from nas.search.plan import _NetworkKey
    from nas.space.searchspace import load_space

    text = (Path(__file__).parents[2] / "search_spaces" / "nasbench201.toml").read_text()
    old = 'edge_3_2 = ["none", "skip_connect",'
    assert old in text
    path = tmp_path / "no_none.toml"
    path.write_text(text.replace(old, 'edge_3_2 = ["skip_connect",'))
    key = _NetworkKey(load_space(path), None)
    cell = dict(zip(PARAM_NAMES, (C3, NO, NO, SK, C1, AP), strict=True))  # node 2 has no input
    assert key.canonical(cell) == cell
