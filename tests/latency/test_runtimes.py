"""Contract tests every registered latency runtime gets for free (a new runtime joins
automatically). No timing here: only what a runtime computes, declares and refuses."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import NasError
from nas.latency.runtimes import (
    DTYPES,
    RUNTIMES,
    TARGETS,
    Runtime,
    check_available,
    get_runtime,
    prepare,
    register_runtime,
)
from nas.latency.runtimes._torch import example
from nas.latency.target import Fingerprint, Target, fingerprint

SHAPE = (2, 3, 8, 8)
CASES = [pytest.param(t, id=t) for t in TARGETS]


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    bn = net[1]
    bn.running_mean.uniform_(-0.5, 0.5)  # statistics of its own: the BN folding is checked
    bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _available(target: Target) -> bool:
    try:
        check_available(target)
    except NasError:
        return False
    return True


def _output(runner) -> torch.Tensor:
    with runner.session():
        out = runner.call()
    if isinstance(out, list | tuple):  # onnxruntime: one array per graph output
        (out,) = out
    return torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out)


@pytest.mark.parametrize("name", CASES)
def test_available_targets_compute_what_eager_torch_computes(name):
    target = Target(name)
    if not _available(target):
        pytest.skip(f"{name} is not available here")
    model = _tiny()
    with torch.inference_mode():
        expected = model(example(SHAPE))
    runner = prepare(copy.deepcopy(model), SHAPE, target, copies=2)
    first, second = _output(runner).float().cpu(), _output(runner).float().cpu()
    torch.testing.assert_close(first, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(second, first)  # the second copy holds the same weights
    assert runner.cuda == (target.device == "cuda")


@pytest.mark.parametrize("name", CASES)
def test_unavailable_targets_are_refused_in_one_line(name):
    target = Target(name)
    if _available(target):
        pytest.skip(f"{name} is available here")
    for attempt in (lambda: check_available(target), lambda: prepare(_tiny(), SHAPE, target)):
        with pytest.raises(NasError) as err:
            attempt()
        assert err.value.field == "target"
        assert name in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "runtime", [r for r in RUNTIMES.values() if r.package], ids=lambda r: r.name
)
def test_a_runtime_without_its_package_is_refused_in_one_line(runtime, monkeypatch):
    monkeypatch.setitem(sys.modules, runtime.package, None)  # import now raises ImportError
    for name in runtime.targets:
        with pytest.raises(NasError) as err:
            check_available(Target(name))
        assert err.value.field == "target"
        assert runtime.package in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", CASES)
def test_fingerprint_names_the_runtime_and_carries_its_versions(name):
    target = Target(name)
    runtime = get_runtime(target.runtime)
    fp = fingerprint(target)
    assert (fp.target, fp.runtime, fp.device) == (name, runtime.name, target.device)
    assert fp.torch == torch.__version__
    fields = {f.name for f in dataclasses.fields(Fingerprint)}
    for field, version in runtime.versions().items():
        assert field in fields
        assert getattr(fp, field) == version
        if _available(target):
            assert version  # a runtime that runs here knows its version
    if runtime.package and _available(target):
        assert f"{runtime.package} {runtime.versions()[runtime.package]}" in fp.describe()
    others = {f for r in RUNTIMES.values() for f in r.versions()} - set(runtime.versions())
    for field in others:
        assert getattr(fp, field) == ""  # another runtime's version does not split its tables


@pytest.mark.parametrize("name", CASES)
def test_declared_targets_and_dtypes(name):
    runtime_name, device = TARGETS[name]
    runtime = RUNTIMES[runtime_name]
    assert runtime.targets[name] == device and device in ("cpu", "cuda")
    assert runtime.dtypes and set(runtime.dtypes) <= set(DTYPES)
    assert (Target(name).runtime, Target(name).device) == (runtime_name, device)
    for dtype in DTYPES:
        if dtype in runtime.dtypes and not (device == "cpu" and dtype == "float16"):
            assert Target(name, dtype=dtype).dtype == dtype
        else:
            with pytest.raises(NasError) as err:
                Target(name, dtype=dtype)
            assert err.value.field == "dtype" and "\n" not in str(err.value)


def test_unknown_names_are_one_line_naming_the_field():
    with pytest.raises(NasError) as err:
        Target("tpu")
    assert str(err.value).startswith("target: unknown latency target 'tpu' (known: ")
    assert all(name in str(err.value) for name in TARGETS)
    with pytest.raises(NasError) as err:
        get_runtime("tensorrt")
    assert str(err.value).startswith("runtime: unknown runtime 'tensorrt' (known: ")
    assert "\n" not in str(err.value)


def test_a_name_or_target_is_registered_once():
    class Again(Runtime):
        name = "torch"
        targets = {"tpu": "cpu"}  # noqa: RUF012

        def prepare(self, module, input_shape, target, copies):
            raise AssertionError("never prepared")

    class Clash(Again):
        name = "clash"
        targets = {"cpu": "cpu"}  # noqa: RUF012

    before = (dict(RUNTIMES), dict(TARGETS))
    for cls in (Again, Clash):
        with pytest.raises(RuntimeError, match="registered twice"):
            register_runtime(cls)
    assert (dict(RUNTIMES), dict(TARGETS)) == before


def test_parsing_a_target_imports_no_torch():
    """The CLI's help and a study file's latency section read the registry alone."""
    code = (
        "import sys; from nas.latency.target import Target; Target('onnxruntime-cpu'); "
        "import nas.latency.runtimes; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'sqlalchemy')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
