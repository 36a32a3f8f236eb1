"""Study files: bundled studies load, overrides apply, every bad field is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.core.errors import NasError
from nas.search.config import SEARCHABLE, HyperParameter, load_study
from nas.search.config import list_studies as studies
from nas.search.setup import prepare
from nas.space.searchspace import load_space


@pytest.mark.parametrize("name", ["digits", "mnist", "cifar10"])
def test_bundled_studies_load_and_name_real_spaces(name):
    study = load_study(name)
    assert study.name == name
    load_space(study.space)  # the space it names exists
    assert study.objective.directions[0] == "maximize"


def test_listing():
    assert {"digits", "mnist", "cifar10"} <= set(studies())


def test_overrides_win_over_the_file():
    study = load_study("digits", {"search.trials": 5, "train.epochs": 2, "data.limit": None})
    assert (study.search.trials, study.train.epochs, study.data.limit) == (5, 2, 0)


def test_relative_paths_resolve_against_the_study_file(tmp_path):
    (tmp_path / "s.toml").write_text(
        'name = "s"\nspace = "tiny"\n[data]\ndataset = "mnist"\npath = "data/mnist"\n'
    )
    study = load_study(tmp_path / "s.toml")
    assert study.resolve(study.data.path) == str(tmp_path / "data" / "mnist")
    assert study.resolve("/abs/path") == "/abs/path"


def test_a_dataset_is_named_by_name_and_its_older_spelling_still_reads(tmp_path):
    for key in ("name", "dataset"):
        (tmp_path / f"{key}.toml").write_text(f'space = "tiny"\n[data]\n{key} = "mnist"\n')
        assert load_study(tmp_path / f"{key}.toml").data.name == "mnist"
    (tmp_path / "both.toml").write_text('space = "tiny"\n[data]\nname = "mnist"\ndataset = "x"\n')
    with pytest.raises(NasError) as err:
        load_study(tmp_path / "both.toml")
    assert err.value.field == "data.dataset" and "both.toml" in str(err.value)


def test_renaming_the_dataset_field_kept_every_stored_budget_key(tmp_path):
    """Evaluations stored before ``dataset`` became ``name`` are still reused: the key is
    the sha256 of the same canonical JSON, written out here by hand."""
    import dataclasses
    import hashlib
    import json

    from nas.search.selection import budget_of

    study = load_study("digits")
    d = study.data
    data = {"dataset": "digits", "path": d.path, "seed": d.seed, "val_fraction": d.val_fraction,
            "test_fraction": d.test_fraction, "limit": d.limit}  # fmt: skip
    parts = {"data": data, "train": dataclasses.asdict(study.train), "resolution": 8}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    assert budget_of(study, {}, 8) == hashlib.sha256(text.encode()).hexdigest()[:24]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('[search]\nsampler = "cmaes"', "search.sampler"),
        ("[search]\ntrials = 0", "search.trials"),
        ("[train]\nlr = -1.0", "train.lr"),
        ('[objective]\nmode = "budget"', "objective.latency_budget_ms"),
        ('[objective]\nmetrics = ["latency"]', "objective.metrics"),
        ('[objective]\nmetrics = ["accuracy", "speed"]', "objective.metrics"),
        ("[data]\ncolour = 1", "data.colour"),
        ('[[hyperparameters]]\nname = "epochs"\nchoices = [1, 2]', "hyperparameters[0].name"),
        ('[[hyperparameters]]\nname = "lr"\nlow = 0.1\nhigh = 0.01', "hyperparameters[0].high"),
        (
            '[[hyperparameters]]\nname = "lr"\nlow = 0.0\nhigh = 0.1\nlog = true',
            "hyperparameters[0].low",
        ),
        ("resolution = -8", "resolution"),
        ("[latency]\nthreads = 1.5", "latency.threads"),
    ],
)
def test_bad_fields_are_named(tmp_path, body, field):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n' + body + "\n")
    with pytest.raises(NasError) as info:
        load_study(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}:"), message
    assert "\n" not in message


def test_malformed_and_missing_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [\n")
    with pytest.raises(NasError, match="malformed TOML"):
        load_study(broken)
    with pytest.raises(NasError, match="cannot read study file"):
        load_study(tmp_path / "absent.toml")
    with pytest.raises(NasError, match="unknown study 'digit'"):
        load_study("digit")


def test_hyperparameters_are_training_settings():
    from dataclasses import fields

    from nas.train.loop import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    assert set(SEARCHABLE) <= names
    assert HyperParameter("batch_size", choices=(32.0, 64.0)).integer


def test_bundled_studies_resolve_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = load_study("digits")
    assert study.resolve(study.export_dir) == str(tmp_path / "exports" / "digits")


def test_relative_sqlite_urls_become_absolute(tmp_path, monkeypatch):
    """Ray runs trials in their own directories: "sqlite:///x.db" must name one file."""
    monkeypatch.chdir(tmp_path)
    study = load_study("digits")
    assert study.search.storage == f"sqlite:///{tmp_path / 'nas_studies.db'}"
    assert study.latency.db == f"sqlite:///{tmp_path / 'nas_latency.db'}"
    assert load_study("cifar10").search.storage.startswith("postgresql+psycopg://")


def test_a_bundled_study_given_by_path_resolves_like_its_name(tmp_path, monkeypatch):
    """`nas search studies/nb201_cifar10.toml` from the repository means what
    `nas search nb201_cifar10` means; a copy elsewhere resolves against its own folder."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    by_path = load_study("studies/nb201_cifar10.toml")
    by_name = load_study("nb201_cifar10")
    assert by_path.base_dir == by_name.base_dir == str(root)
    assert by_path.tabular == by_name.tabular
    copy = tmp_path / "mine.toml"
    copy.write_text((root / "studies" / "nb201_cifar10.toml").read_text())
    assert load_study(copy).base_dir == str(tmp_path)


def test_files_that_say_nothing_or_not_text_are_refused(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(NasError, match="empty study file") as err:
        load_study(empty)
    assert err.value.source == str(empty)
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NasError, match="study file is not UTF-8 text"):
        load_study(garbage)
    spaceless = tmp_path / "spaceless.toml"
    spaceless.write_text("[search]\ntrials = 3\n")
    assert load_study(spaceless).space == ""  # enough for a report or a dashboard
    with pytest.raises(NasError, match="names its search space") as err:
        prepare(load_study(spaceless))  # a search is refused before any work
    assert err.value.field == "space" and err.value.source == str(spaceless)
    assert load_study(spaceless, {"space": "tiny"}).space == "tiny"  # --space names it


def test_a_bad_value_in_the_file_is_reported_even_when_overridden(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('space = "tiny"\n[search]\ntrials = 0\n')
    with pytest.raises(NasError) as err:
        load_study(path, {"search.trials": 5})
    assert str(err.value).startswith(f"{path}: search.trials:")


def test_a_bad_override_names_the_command_line_not_the_file():
    with pytest.raises(NasError) as err:
        load_study("digits", {"search.trials": 0})
    assert str(err.value).startswith("command line: search.trials:")
    with pytest.raises(NasError) as err:
        load_study("digits", {"space.x": 1})
    assert err.value.source == "command line"


def test_a_single_objective_sampler_in_pareto_mode_names_those_that_fit(tmp_path):
    (tmp_path / "p.toml").write_text(
        'space = "tiny"\n[objective]\nmode = "pareto"\n[search]\nsampler = "rea"\n'
    )
    with pytest.raises(NasError) as err:
        load_study(tmp_path / "p.toml")
    assert err.value.field == "search.sampler" and "p.toml" in str(err.value)
    # Every registered sampler that serves several objectives is offered, rea is not.
    offered = str(err.value).split("use one of: ")[1].split(", ")
    assert set(offered) == {"nsga2", "tpe", "random", "ls", "bananas"}
