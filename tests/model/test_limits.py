"""Inputs too big to hold are refused with one line before anything is allocated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas.cli import app
from nas.core.errors import NasError
from nas.model import builder
from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.model.reference import load_arch


def test_json_nested_too_deeply_is_one_line():
    with pytest.raises(NasError, match="nested too deeply") as err:
        Architecture.from_json("[" * 100_000 + "]" * 100_000, source="deep.json")
    assert str(err.value).startswith("deep.json: ")


def test_weights_that_cannot_fit_are_refused_before_allocating(monkeypatch):
    arch = load_arch("mobilenet_v2")
    need = cost(arch).params * 4
    monkeypatch.setattr(builder, "physical_memory", lambda: need - 1)
    allocated = []
    monkeypatch.setattr(builder, "layout", lambda a: allocated.append(a))  # must not be reached
    with pytest.raises(NasError, match=r"GB of float32 weights exceed") as err:
        builder.build(arch)
    assert err.value.field == "channels" and allocated == []
    monkeypatch.undo()
    assert builder.build(arch) is not None  # the same network fits this machine


def test_export_of_a_billion_channels_exits_2_and_writes_nothing(tmp_path: Path):
    data = json.loads(load_arch("mobilenet_v2").to_json())
    data["stages"][0]["out_channels"] = 10**9
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    got = CliRunner().invoke(app, ["export", str(path), "--out", str(out)])
    assert got.exit_code == 2
    assert "float32 weights exceed" in got.output and len(got.output.strip().splitlines()) == 1
    assert f"{path}: channels:" in got.output  # the file and the field
    assert not out.exists()
