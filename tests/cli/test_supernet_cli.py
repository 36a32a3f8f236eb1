"""``nas supernet train``: trains once, reuses after, names the stored file; a study's
bad [supernet] section or a checkpoint of another recipe is one line, exit 2, nothing
written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas.cli.app import app
from nas.core.errors import NasError
from nas.search.config import load_study
from tests.cli.test_cli import assert_one_line_error

runner = CliRunner()

STUDY = """
name = "sn"
space = "tiny"
resolution = 8
export_dir = "out"

[data]
name = "digits"
limit = 300

[supernet]
epochs = 1
batch_size = 32
random_subnets = 0
{extra}
"""


def _study(tmp_path: Path, extra: str = "", name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(STUDY.format(extra=extra))
    return path


def test_supernet_section_is_parsed_and_checked(tmp_path: Path) -> None:
    cfg = load_study(_study(tmp_path, "lr = 0.1\nbn_batches = 3"))
    assert (cfg.supernet.epochs, cfg.supernet.lr, cfg.supernet.bn_batches) == (1, 0.1, 3)
    with pytest.raises(NasError) as err:
        load_study(_study(tmp_path, "temperature = -1.0"))
    assert err.value.field == "supernet.temperature"
    assert err.value.source.endswith("study.toml")
    with pytest.raises(NasError) as err:
        load_study(_study(tmp_path, "epoch = 3"))
    assert err.value.field == "supernet.epoch"


def test_train_then_reuse_then_refuse_another_recipe(tmp_path: Path) -> None:
    study = _study(tmp_path)
    first = runner.invoke(app, ["supernet", "train", str(study)])
    assert first.exit_code == 0, first.output
    stored = sorted((tmp_path / "out" / "supernets").iterdir())
    assert len(stored) == 1 and stored[0].suffix == ".pt"
    assert "trained in" in first.stdout and str(stored[0]) in first.stdout
    before = stored[0].read_bytes()

    again = runner.invoke(app, ["supernet", "train", str(study)])
    assert again.exit_code == 0, again.output
    assert "(reused)" in again.stdout and str(stored[0]) in again.stdout
    assert stored[0].read_bytes() == before

    other = _study(tmp_path, "lr = 0.2", name="other.toml")
    bad = runner.invoke(app, ["supernet", "train", str(other), "--checkpoint", str(stored[0])])
    assert_one_line_error(bad, str(stored[0]), "recipe.lr", "0.05", "0.2")
    assert stored[0].read_bytes() == before
    assert sorted((tmp_path / "out" / "supernets").iterdir()) == stored  # nothing written


def test_bad_option_and_bad_section(tmp_path: Path) -> None:
    study = _study(tmp_path)
    assert_one_line_error(
        runner.invoke(app, ["supernet", "train", str(study), "--epochs", "0"]),
        "command line",
        "supernet.epochs",
    )
    assert_one_line_error(
        runner.invoke(app, ["supernet", "train", str(study), "--workers", "0"]), "workers"
    )
    bad = _study(tmp_path, "momentum = 1.5", name="bad.toml")
    assert_one_line_error(
        runner.invoke(app, ["supernet", "train", str(bad)]), "bad.toml", "supernet.momentum"
    )
    assert not (tmp_path / "out").exists()
