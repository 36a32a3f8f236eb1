"""Contract tests every registered sampler gets for free (a new sampler joins automatically)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import optuna
import pytest

from nas.core.errors import NasError
from nas.search.config import load_study
from nas.search.samplers import SAMPLERS, SamplerRequest, get_sampler

SPACE = {"op": ("conv3", "conv5", "skip"), "width": (8, 16, 24, 32), "depth": (1, 2, 3)}
TRIALS = 30

optuna.logging.set_verbosity(optuna.logging.WARNING)
MULTI = sorted(n for n, s in SAMPLERS.items() if s.multi_objective)
SINGLE_ONLY = sorted(n for n, s in SAMPLERS.items() if not s.multi_objective)


def _suggest(trial: optuna.Trial) -> dict:
    params = {n: trial.suggest_categorical(n, choices) for n, choices in SPACE.items()}
    trial.set_user_attr("latency_ms", float(params["width"] * params["depth"]))
    return params


def _score(params: dict) -> float:
    return params["width"] / 32 + params["depth"] / 3 - (params["op"] == "skip")


def _accuracy(trial: optuna.Trial) -> float:
    return _score(_suggest(trial))


def _pareto(trial: optuna.Trial) -> tuple[float, float]:
    params = _suggest(trial)
    return _score(params), trial.user_attrs["latency_ms"]


def _key(params) -> tuple:
    return tuple(sorted(params.items()))


def _constraints(trial) -> list[float]:
    return [trial.user_attrs.get("latency_ms", float("inf")) - 48.0]


def _run(name: str, seed: int, directions: list[str]) -> optuna.Study:
    request = SamplerRequest(seed=seed, trials=TRIALS, key=_key, constraints=_constraints)
    objective = _pareto if len(directions) > 1 else _accuracy
    with warnings.catch_warnings():  # Optuna flags TPE's group and constraints_func options
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        sampler = get_sampler(name).build(request)
        study = optuna.create_study(directions=directions, sampler=sampler)
        study.optimize(objective, n_trials=TRIALS)
    return study


def _params(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.trials]


def _check_inside_space(study: optuna.Study) -> None:
    assert len(study.trials) == TRIALS
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert set(t.params) == set(SPACE)
        for n, value in t.params.items():
            assert value in SPACE[n], (t.number, n, value)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_single_objective_search_stays_inside_the_space(name):
    _check_inside_space(_run(name, 0, ["maximize"]))


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_search_stays_inside_the_space(name):
    _check_inside_space(_run(name, 0, ["maximize", "minimize"]))


@pytest.mark.parametrize("name", SINGLE_ONLY)
def test_single_objective_sampler_refuses_several_objectives(name):
    with pytest.raises(NasError, match="multi-objective"):
        _run(name, 0, ["maximize", "minimize"])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_trials_other_seed_other_trials(name):
    directions = ["maximize", "minimize"] if SAMPLERS[name].multi_objective else ["maximize"]
    first = _params(_run(name, 7, directions))
    assert _params(_run(name, 7, directions)) == first
    assert _params(_run(name, 8, directions)) != first


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_registration_describes_itself(name):
    spec = SAMPLERS[name]
    assert spec.name == name
    assert spec.help.strip() and "\n" not in spec.help
    assert "|" not in spec.help  # the CLI joins the help lines with it


def test_unknown_sampler_is_one_line_naming_the_field():
    with pytest.raises(NasError) as err:
        get_sampler("cmaes", field="search.sampler")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("search.sampler: unknown sampler 'cmaes'")
    for name in SAMPLERS:
        assert name in text


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_study_rules_follow_the_registration(name):
    """A pareto study (digits) takes exactly the samplers that declare several objectives."""
    assert load_study("digits").objective.mode == "pareto"
    overrides = {"search.sampler": name}
    if SAMPLERS[name].multi_objective:
        assert load_study("digits", overrides).search.sampler == name
    else:
        with pytest.raises(NasError, match=r"search\.sampler"):
            load_study("digits", overrides)


def test_the_registry_imports_neither_optuna_nor_torch():
    """Reading a study file and the CLI's help need the names only."""
    code = (
        "import sys, nas.search.samplers; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('optuna', 'torch')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
