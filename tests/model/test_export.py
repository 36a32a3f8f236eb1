"""Export round trips: the files reproduce the builder's model, need only torch, and an
export is all or nothing."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nas.model.export as export_module
from nas.core.errors import NasError
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.builder import build
from nas.model.export import FORMATS, export, export_name, exporter, files
from nas.model.export import formats as formats_module
from nas.model.ops import OPS
from nas.model.ops.cell import EXAMPLE_CELL
from nas.model.ops.layers import ACTIVATIONS

DRIVER = Path(__file__).parent.parent / "_export_check.py"


# -- helpers --------------------------------------------------------------------------


def trained(arch: Architecture, seed: int = 0) -> nn.Module:
    """The builder's model with weights a trained one could have: BN statistics measured on
    random data and then perturbed, random BN affine pairs and biases (seeded), so that
    eval-mode BatchNorm is not the identity and a wrong running stat shows in the logits."""
    model = build(arch, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)  # dropout / drop path in the calibration pass
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the one pass
        shape = (2, arch.in_channels, arch.resolution, arch.resolution)
        model.train()(torch.randn(shape, generator=g))
        for bn in bns:
            bn.momentum = 0.1
            c = bn.num_features
            bn.running_mean += 0.2 * torch.randn(c, generator=g) * bn.running_var.sqrt()
            bn.running_var *= torch.empty(c).uniform_(0.5, 2.0, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
            bn.bias.normal_(0.0, 0.2, generator=g)
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and m.bias is not None:
                m.bias.normal_(0.0, 0.2, generator=g)
        # Logits of a trained classifier's size (|z| <= 10): the absolute tolerances below
        # then mean what they say, whatever the random weights happened to multiply up to.
        fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        scale = 10.0 / model.eval()(torch.randn(shape, generator=g)).abs().max().clamp(min=1.0)
        fc.weight *= scale
        fc.bias *= scale
    return model.eval()


def reference_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # xdist workers share the cores
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_diff(a: torch.Tensor | np.ndarray, b: torch.Tensor) -> float:
    return (torch.as_tensor(a).double() - b.double()).abs().max().item()


def run_driver(jobs: list[dict], tmp: Path) -> dict[str, dict]:
    """Load each export in one fresh process where ``nas`` cannot be imported."""
    job_path = tmp / "job.json"
    job_path.write_text(json.dumps({"threads": torch.get_num_threads(), "models": jobs}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(job_path)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        # The whole round-trip test, this process included, took up to 71 s with both
        # cores busy with other work: 600 s is more than 8x that.
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {job["name"]: torch.load(job["output"], weights_only=True) for job in jobs}


def imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def round_trip(cases: dict[str, tuple[Architecture, nn.Module]], tmp: Path) -> None:
    """Export every case, reload it without nas and with onnxruntime, compare to the model."""
    jobs = []
    refs = {}
    for name, (arch, model) in cases.items():
        out = tmp / name
        result = export(arch, out, model=model, name=name)
        assert result.name == name
        assert result.out_dir == out.absolute()
        assert set(result.paths) == set(FORMATS)
        assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.{f}" for f in FORMATS)
        g = torch.Generator().manual_seed(1)
        x = torch.randn((2, arch.in_channels, arch.resolution, arch.resolution), generator=g)
        torch.save(x, out / "input.pt")
        refs[name] = (arch, model, x, reference_output(model, x))

        # The generated source imports only torch (and the stdlib), never nas.
        source = result.paths["py"].read_text()
        assert imports(source) <= {"__future__", "os", "torch"}, imports(source)
        # The genotype file is the architecture, canonical and indented.
        text = result.paths["json"].read_text()
        assert Architecture.from_json(text) == arch
        assert text == arch.to_json(indent=2) + "\n"
        # Weights: plain tensors only, the builder's keys.
        state = torch.load(result.paths["pt"], weights_only=True)
        assert list(state) == list(model.state_dict())
        for key, value in model.state_dict().items():
            assert torch.equal(state[key], value), key

        # ONNX: dynamic batch (the export traced batch 2), names as documented.
        session = ort_session(result.paths["onnx"])
        assert [i.name for i in session.get_inputs()] == ["input"]
        assert [o.name for o in session.get_outputs()] == ["logits"]
        for batch in (1, 3):
            xb = torch.randn((batch, *x.shape[1:]), generator=g)
            (got,) = session.run(["logits"], {"input": xb.numpy()})
            assert got.shape == (batch, arch.num_classes)
            assert max_diff(got, reference_output(model, xb)) <= 1e-4, (name, batch)

        jobs.append(
            {
                "name": name,
                "dir": str(out),
                "input": str(out / "input.pt"),
                "weights": str(result.paths["pt"]),
                "ts": str(result.paths["ts"]),
                "output": str(out / "outputs.pt"),
            }
        )

    results = run_driver(jobs, tmp)
    for name, (arch, model, _, ref) in refs.items():
        r = results[name]
        assert r["nas_modules"] == [], name
        assert r["training"] is False, name
        assert r["keys"] == list(model.state_dict()), name
        assert r["class_name"] in r["all"]
        assert r["input_shape"] == [1, arch.in_channels, arch.resolution, arch.resolution]
        assert r["architecture_id"] == arch.id
        assert r["fresh_shape"] == [2, 7]
        assert ref.abs().max() > 1e-2, f"{name}: degenerate logits make the test meaningless"
        assert max_diff(r["py"], ref) <= 1e-6, name
        assert max_diff(r["script"], ref) <= 1e-6, name
        assert max_diff(r["ts"], ref) <= 1e-6, name


def op_arch(op_name: str, index: int = 0) -> Architecture:
    """A small network exercising one op twice: first changing shape where the op can
    (stride 2, more channels, largest kernel/dilation/expansion, SE, one activation), then
    keeping it (stride 1, repeats 2: the residual case; smallest settings, no SE)."""
    op = OPS[op_name]
    cin = 8

    def settings(big: bool) -> dict:
        pick = -1 if big else 0
        values = {
            "kernel": op.kernels[pick],
            "dilation": op.dilations[pick],
            "expansion": op.expansions[pick],
            "se_ratio": 0.25 if big else 0.0,
            "activation": ACTIVATIONS[(index + (1 if big else 3)) % len(ACTIVATIONS)],
        }
        return {k: v for k, v in values.items() if k in op.fields}

    first = None
    for stride, cout in [(2, 16), (2, cin), (1, 16), (1, cin)]:
        try:
            first = Stage(op_name, out_channels=cout, stride=stride, **settings(True))
            op.validate(first.block(cin, first=True))
        except NasError:
            first = None
            continue
        break
    assert first is not None, f"no shape-changing or -keeping stage for {op_name}"
    second = Stage(op_name, out_channels=first.out_channels, repeats=2, **settings(False))
    head = Head(channels=24, dropout=0.1, activation="relu6") if index % 2 == 0 else Head()
    return Architecture(
        resolution=32,
        num_classes=10,
        stem=Stem(channels=cin, activation="hardswish"),
        stages=(first, second),
        head=head,
        norm_eps=1e-3,
        drop_path=0.1,
        name=f"op_{op_name}",
        cell=EXAMPLE_CELL if op.reads_cell else "",
    )


def tiny() -> Architecture:
    return op_arch("conv").replace(name="tiny")


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".export"))


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["mobilenet_v2", "efficientnet_b0"])
def test_reference_round_trip(request, fixture, tmp_path):
    arch = request.getfixturevalue(fixture)
    if fixture == "efficientnet_b0":
        arch = arch.replace(resolution=128)  # MobileNetV2 keeps 224; the same code either way
    round_trip({fixture: (arch, trained(arch))}, tmp_path)


def test_every_registered_op_round_trips(tmp_path):
    """Part of the op contract: a newly registered op is covered here automatically."""
    cases = {}
    for i, name in enumerate(sorted(OPS)):
        arch = op_arch(name, i)
        op = OPS[name]
        if "se_ratio" in op.fields:
            assert arch.stages[0].se_ratio > 0
        cases[f"op_{name}"] = (arch, trained(arch, seed=i))
    assert {"conv", "dil", "ds", "ir", "skip", "zero", "maxpool", "avgpool"} <= set(OPS)
    ir = op_arch("ir")
    assert OPS["ir"].residual(ir.stages[1].block(ir.stages[1].out_channels, first=False))
    round_trip(cases, tmp_path)


def test_generated_source_is_lint_clean(mobilenet_v2, tmp_path):
    """Readable output: the file passes ruff's lint and format checks as generated."""
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed")
    arch = op_arch("ds").replace(name="ds_net")
    paths = [export(arch, tmp_path, formats=("py",)).paths["py"]]
    paths.append(export(mobilenet_v2, tmp_path, formats=("py",)).paths["py"])
    args = ["--isolated", "--line-length", "100"]
    rules = ["--select", "E,F,W,I,B,UP"]
    for cmd in (["check", *args, *rules], ["format", "--check", *args]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *cmd, "--no-cache", *map(str, paths)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_source_renders_recipes_readably(mobilenet_v2):
    source = export_module.render_source(mobilenet_v2, "mobilenet_v2")
    assert "class MobilenetV2(nn.Module):" in source
    assert "def __init__(self, num_classes: int = 1000) -> None:" in source
    assert "num_classes=num_classes" in source
    assert 'self.stem = ConvBNAct(cin=3, cout=32, stride=2, act="relu6")' in source
    assert "InvertedResidual(cin=32, cout=16, expansion=1)," in source
    assert f'ARCHITECTURE_ID = "{mobilenet_v2.id}"' in source
    assert "INPUT_SHAPE = (1, 3, 224, 224)" in source
    assert mobilenet_v2.compact().split()[1] in source
    pool = op_arch("maxpool")
    assert "nn.MaxPool2d(kernel_size=5, stride=2, padding=2)," in export_module.render_source(
        pool, "p"
    )


# -- all or nothing -------------------------------------------------------------------


def test_existing_files_are_kept_without_overwrite(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny.pt").write_bytes(b"old weights")
    (out / "notes.txt").write_text("mine")

    def no_build(*args, **kwargs):
        raise AssertionError("export built a model before checking its targets")

    monkeypatch.setattr(exporter, "build", no_build)
    with pytest.raises(NasError) as err:
        export(tiny(), out)
    assert err.value.field == str((out / "tiny.pt").absolute())
    assert "overwrite" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "tiny.pt"]
    assert (out / "tiny.pt").read_bytes() == b"old weights"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny.json").write_text("old")
    result = export(tiny(), out, formats=("json", "pt"), overwrite=True)
    assert Architecture.from_json(result.paths["json"].read_text()) == tiny()
    assert sorted(p.name for p in out.iterdir()) == ["tiny.json", "tiny.pt"]
    assert leftovers(tmp_path) == []


def _failing_onnx(model, example, path):
    path.write_bytes(b"half an onnx file")
    raise RuntimeError("exporter crashed")


def test_failed_export_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.setattr(formats_module, "write_onnx_file", _failing_onnx)
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export(tiny(), out)
    assert list(tmp_path.iterdir()) == []  # new/ and new/out were made for it, and removed


def test_failed_overwrite_keeps_previous_export(tmp_path, monkeypatch):
    out = tmp_path / "out"
    export(tiny(), out, formats=("json", "py", "pt"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(formats_module, "write_onnx_file", _failing_onnx)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export(tiny().replace(num_classes=3), out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_failure_while_moving_rolls_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    export(tiny(), out, formats=("json", "py", "pt"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # json backed up and replaced, py backed up, then: fail
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        export(tiny().replace(num_classes=3), out, formats=("json", "py", "pt"), overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []


# -- inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["1net", "my-net", "class", "torch", "nas", "os", "", "a.b"])
def test_invalid_names_are_rejected(bad, tmp_path):
    with pytest.raises(NasError) as err:
        export(tiny(), tmp_path, name=bad, formats=("json",))
    assert err.value.field == "name"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("my net-v2", "my_net_v2"),
        ("2x", "arch_2x"),
        ("torch", "torch_net"),
        ("lambda", "lambda_net"),
    ],
)
def test_names_from_labels_are_made_importable(label, expected):
    assert export_name(tiny().replace(name=label)) == expected


def test_unnamed_architecture_uses_its_id(tmp_path):
    arch = tiny().replace(name="")
    result = export(arch, tmp_path, formats=("json",))
    assert result.name == f"arch_{arch.short_id}"
    assert result.paths["json"].name == f"arch_{arch.short_id}.json"


@pytest.mark.parametrize("formats", [("pdf",), (), ("py", "h5")])
def test_unknown_or_no_formats_are_rejected(formats, tmp_path):
    with pytest.raises(NasError) as err:
        export(tiny(), tmp_path / "out", formats=formats)
    assert err.value.field == "formats"
    assert not (tmp_path / "out").exists()


def test_missing_onnx_extra_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(NasError, match=r"nas\[export\]") as err:
        export(tiny(), tmp_path / "out")
    assert "onnxruntime" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "out").exists()
    # Without ONNX the other formats still work.
    result = export(tiny(), tmp_path / "out", formats=("py", "pt", "ts", "json"))
    assert set(result.paths) == {"py", "pt", "ts", "json"}


def test_model_from_another_architecture_is_rejected(tmp_path):
    other = op_arch("ds")
    with pytest.raises(NasError) as err:
        export(tiny(), tmp_path / "out", model=build(other), formats=("pt",))
    assert err.value.field == "model"
    with pytest.raises(NasError):
        export(tiny(), tmp_path / "out", model="weights.pt", formats=("pt",))  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_training_flags_are_restored(tmp_path):
    model = build(tiny()).train()
    model.stem.bn.eval()  # a frozen BatchNorm must stay frozen
    flags = [m.training for m in model.modules()]
    export(tiny(), tmp_path, model=model, formats=("ts", "onnx"))
    assert [m.training for m in model.modules()] == flags


def test_half_precision_model_is_exported_as_float32(tmp_path):
    model = trained(tiny()).to(torch.bfloat16).train()
    result = export(tiny(), tmp_path, model=model, formats=("py", "pt"))
    state = torch.load(result.paths["pt"], weights_only=True)
    assert state["stem.conv.weight"].dtype == torch.float32
    assert next(model.parameters()).dtype == torch.bfloat16  # the original is left alone
    assert model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_is_exported_from_a_cpu_copy(tmp_path):
    model = trained(tiny()).cuda().train()
    result = export(tiny(), tmp_path, model=model)
    state = torch.load(result.paths["pt"], weights_only=True)
    assert all(v.device.type == "cpu" for v in state.values())
    assert next(model.parameters()).device.type == "cuda"
    assert model.training
    x = torch.randn(2, 3, 32, 32)
    (got,) = ort_session(result.paths["onnx"]).run(["logits"], {"input": x.numpy()})
    ref = reference_output(model, x.cuda()).cpu()
    assert max_diff(got, ref) <= 1e-3  # GPU kernels round differently


@pytest.mark.slow
def test_dynamo_exporter_fallback(tmp_path, monkeypatch):
    """Where the legacy ONNX exporter fails (or is gone), the dynamo exporter takes over."""

    def gone(*args, **kwargs):
        raise RuntimeError("legacy exporter removed")

    monkeypatch.setattr(formats_module, "_onnx_legacy", gone)
    arch = op_arch("ir")
    model = trained(arch)
    path = export(arch, tmp_path, model=model, formats=("onnx",)).paths["onnx"]
    session = ort_session(path)
    x = torch.randn(3, 3, 32, 32)
    (got,) = session.run(["logits"], {"input": x.numpy()})
    assert max_diff(got, reference_output(model, x)) <= 1e-4
