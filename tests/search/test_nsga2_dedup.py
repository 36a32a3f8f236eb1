"""NSGA-II with a key: no network proposed twice, on spaces small enough to count."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import optuna
import pytest

from nas.bench import nb201
from nas.core.errors import NasError
from nas.model import nb201_cell
from nas.search.samplers import PicklableNSGAIISampler, SamplerRequest, get_sampler

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nasbench201"
NAMES = ("a", "b", "c")
CHOICES = (0, 1, 2, 3)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _multiset(params) -> tuple:
    """(0, 1, 3) and (3, 1, 0) are one network: C(4 + 3 - 1, 3) = 20 networks."""
    return tuple(sorted(params[n] for n in NAMES))


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    x = [trial.suggest_categorical(n, CHOICES) for n in NAMES]
    return float(sum(x)), float(max(x))


def _study(sampler, n: int) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=n)
    return study


def test_every_one_of_the_20_networks_once_then_an_error():
    sampler = PicklableNSGAIISampler(population_size=4, seed=0, key=_multiset)
    study = _study(sampler, 20)
    keys = [_multiset(t.params) for t in study.trials]
    assert len(set(keys)) == len(keys) == 20
    # Later generations were bred, not only drawn: the generation counter moved on.
    generation = sampler._get_generation_key()
    assert max(t.system_attrs[generation] for t in study.trials) >= 3
    with pytest.raises(NasError, match="every point") as err:
        study.optimize(_objective, n_trials=1)
    assert err.value.field == "key"


def test_without_a_key_nsga2_repeats_networks():
    """The same run without a key: what the key prevents does happen."""
    study = _study(PicklableNSGAIISampler(population_size=4, seed=0), 20)
    repeats = Counter(_multiset(t.params) for t in study.trials)
    assert sum(c - 1 for c in repeats.values()) > 0


def test_the_key_travels_through_pickle_and_the_copy_samples_the_same():
    runs = []
    for copy in (False, True):
        sampler = PicklableNSGAIISampler(population_size=4, seed=5, key=_multiset)
        if copy:
            sampler = pickle.loads(pickle.dumps(sampler))
        runs.append([t.params for t in _study(sampler, 15).trials])
    assert runs[0] == runs[1]


def test_parameters_outside_the_key_are_left_to_nsga2():
    def objective(trial):
        x = [trial.suggest_categorical(n, CHOICES) for n in NAMES]
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        return float(sum(x)), lr

    sampler = PicklableNSGAIISampler(population_size=4, seed=1, key=_multiset)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=18)
    keys = [_multiset(t.params) for t in study.trials]
    assert len(set(keys)) == len(keys)
    assert all(1e-3 <= t.params["lr"] <= 1e-1 for t in study.trials)


def test_nasbench201_200_trials_are_200_networks():
    """Plain NSGA-II held 138 distinct networks in 300 trials of this study (issue 22)."""
    if not DATA.is_dir():
        pytest.skip(f"NAS-Bench-201 tables not found at {DATA} (CI provides ../shared/data)")
    table = nb201.load_table(DATA)
    lat = table.latency("pixel3")

    def key(params):
        return nb201_cell.canonical(nb201_cell.ops_from_params(params))

    def objective(trial):
        ops = tuple(trial.suggest_categorical(n, nb201_cell.OPS) for n in nb201_cell.PARAM_NAMES)
        row = table.index_of(ops)
        return float(table.val_accuracy[row]), float(lat[row])

    sampler = get_sampler("nsga2").build(SamplerRequest(seed=0, trials=200, key=key))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=200)
    assert len({key(t.params) for t in study.trials}) == 200
