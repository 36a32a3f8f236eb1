"""Search spaces: loading and validation, the walker (decode/encode/sample), exact size."""

from __future__ import annotations

import functools
import itertools
import math
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.model.builder import build
from nas.space.searchspace import (
    SearchSpace,
    contains,
    decode,
    dimensions,
    encode,
    list_spaces,
    load_space,
    sample,
    sample_random,
    size,
    walk,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = """
name = "small"
resolution = 16
num_classes = 5
[stem]
channels = [8, 16]
stride = 1
[[stages]]
op = ["conv", "ir"]
out_channels = 16
kernel = [3, 5]
expansion = [1, 3]
se_ratio = [0.0, 0.25]
[[stages]]
op = ["dil", "ds", "skip"]
out_channels = 16
kernel = [3, 5]
se_ratio = [0.0, 0.25]
  [stages.dil]
  dilation = [2, 3]
[[stages]]
op = ["ir", "conv"]
out_channels = [16, 24]
stride = 2
kernel = [3, 7]
expansion = [1, 6]
se_ratio = [0.0, 0.25]
"""
# stem 2 x s0 (conv 2 + ir 2*2*2) x s1 (dil 2*2 + ds 2*2 + skip 1) x s2 2 * (ir 8 + conv 2)
SMALL_SIZE = 2 * 10 * 9 * 20


@functools.cache
def shipped(name: str) -> SearchSpace:
    return load_space(name)


def write(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def small(tmp_path: Path) -> SearchSpace:
    return load_space(write(tmp_path, SMALL))


def stage_op(space: SearchSpace, params: dict, i: int) -> str:
    return params.get(f"s{i}_op", space.stages[i].op[0])


def enumerate_params(space: SearchSpace) -> list[dict]:
    """Brute force: every params dict, walking the dimensions with their conditions."""
    dims = dimensions(space)
    out: list[dict] = []

    def rec(k: int, params: dict) -> None:
        if k == len(dims):
            out.append(dict(params))
            return
        d = dims[k]
        if d.ops is not None and stage_op(space, params, d.stage) not in d.ops:
            rec(k + 1, params)
            return
        for choice in d.choices:
            params[d.label] = choice
            rec(k + 1, params)
            del params[d.label]

    rec(0, {})
    return out


# -- size ------------------------------------------------------------------------------


def test_size_equals_brute_force(small):
    all_params = enumerate_params(small)
    archs = [decode(small, p) for p in all_params]
    assert size(small) == SMALL_SIZE == len(all_params) == len({a.id for a in archs})
    # Every member round-trips; encode is decode's inverse on the whole space.
    for params, arch in zip(all_params[::37], archs[::37], strict=True):
        assert encode(small, arch) == params


def test_size_of_shipped_spaces():
    mobile, tiny = shipped("mobile"), shipped("tiny")
    # per stage: widths x depths x (conv 3*3 + ds 3*2*3 + dil 3*2*3 + ir 3*3*2*3)
    per_stage = [w * r * 99 for w, r in [(2, 2), (2, 3), (3, 3), (3, 3), (3, 3), (3, 3), (2, 2)]]
    assert size(mobile) == 7 * 3 * 3 * 3 * math.prod(per_stage) == 11095565388477666266016
    # per stage: widths x depths x (conv 3 + ds 3*2 + dil 3*2 + ir 3*3*2)
    per_stage = [w * r * 33 for w, r in [(2, 2), (3, 2), (2, 2), (2, 2)]]
    assert size(tiny) == 4 * 2 * 2 * math.prod(per_stage) == 7286298624


def test_with_data_fixes_the_input():
    mobile = shipped("mobile")
    bound = mobile.with_data(in_channels=1, num_classes=10, resolution=64)
    labels = {d.label for d in dimensions(bound)}
    assert "resolution" not in labels and "resolution" in {d.label for d in dimensions(mobile)}
    arch = sample_random(bound, 0)
    assert (arch.in_channels, arch.num_classes, arch.resolution) == (1, 10, 64)
    assert size(bound) * 7 == size(mobile)
    assert size(mobile.with_data(resolution=[32, 64])) * 7 == size(mobile) * 2
    with pytest.raises(NasError, match="resolution"):
        mobile.with_data(resolution=0)
    # Dataset sizes often come as numpy integers.
    assert mobile.with_data(num_classes=np.int64(10)).top == mobile.with_data(num_classes=10).top
    assert hash(bound) != hash(mobile) and bound != mobile


def test_to_dict_round_trip(small):
    for space in (small, shipped("mobile"), shipped("tiny")):
        again = SearchSpace.from_dict(space.to_dict(), source=space.source)
        assert again == space and hash(again) == hash(space)
        # Spaces travel to worker processes (pickle) intact.
        copy = pickle.loads(pickle.dumps(space))
        assert copy == space and size(copy) == size(space)
        assert sample_random(copy, 3).id == sample_random(space, 3).id


# -- the walker ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mobile", "tiny"])
def test_round_trip_and_contains(name):
    space = shipped(name)
    rng = np.random.default_rng(1)
    for _ in range(30):
        arch = sample_random(space, rng)
        params = encode(space, arch)
        assert decode(space, params).id == arch.id
        assert contains(space, arch)
        # Architecture JSON round trip keeps membership.
        assert contains(space, Architecture.from_json(arch.to_json()))


def test_contains_is_false_outside(small):
    arch = decode(small, enumerate_params(small)[0])
    outside = [
        arch.replace(stages=(*arch.stages[:2], replace(arch.stages[2], kernel=5))),
        arch.replace(resolution=32),
        arch.replace(stages=arch.stages[:2]),
        arch.replace(norm_eps=1e-3),
    ]
    for other in outside:
        assert not contains(small, other)
    with pytest.raises(NasError) as err:
        encode(small, outside[0])
    assert err.value.field == "stages[2].kernel"
    assert contains(small, arch.replace(name="renamed"))


def test_decode_is_strict(small):
    params = enumerate_params(small)[-1]
    assert decode(small, params)
    cases = {
        "missing": ({k: v for k, v in params.items() if k != "s0_op"}, "s0_op"),
        "unknown": ({**params, "s9_kernel": 3}, "s9_kernel"),
        "out of choices": ({**params, "s2_kernel": 5}, "s2_kernel"),
        "fixed": ({**params, "resolution": 16}, "resolution"),
        "bool for int": ({**params, "stem_channels": True}, "stem_channels"),
    }
    conv = {**params, "s2_op": "conv"}
    conv.pop("s2_expansion", None)
    conv.pop("s2_se_ratio", None)
    assert decode(small, conv).stages[2].op == "conv"
    cases["inactive"] = ({**conv, "s2_expansion": 6}, "s2_expansion")
    for why, (bad, label) in cases.items():
        with pytest.raises(NasError) as err:
            decode(small, bad)
        assert err.value.field == label, why
        assert "\n" not in str(err.value)


def test_dimensions_labels_and_conditions():
    space = shipped("mobile")
    dims = {d.label: d for d in dimensions(space)}
    assert len(dims) == len(dimensions(space))
    assert all(len(d.choices) > 1 for d in dims.values())
    assert dims["s2_expansion"].ops == ("ir",)
    assert dims["s2_se_ratio"].ops == ("ds", "ir")
    assert dims["s2_dil_dilation"].ops == ("dil",) and dims["s2_dil_dilation"].choices == (2, 3)
    assert dims["s2_kernel"].ops is None and dims["s2_op"].ops is None
    assert dims["s6_out_channels"].field == "stages[6].out_channels"
    assert "stem_stride" not in dims and "head_channels" not in dims  # constants


class RecordingTrial:
    """The only trial method ``sample`` may use is ``suggest_categorical``."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.calls: list[tuple[str, tuple]] = []

    def suggest_categorical(self, name, choices):
        self.calls.append((name, tuple(choices)))
        return choices[int(self.rng.integers(len(choices)))]


class Spy:
    """Wraps a real Optuna trial and records which attributes ``sample`` touches."""

    def __init__(self, trial) -> None:
        self.trial = trial
        self.used: set[str] = set()

    def __getattr__(self, name):
        self.used.add(name)
        return getattr(self.trial, name)


def test_sample_with_fake_trial_is_deterministic():
    space = shipped("mobile")
    a, b = RecordingTrial(3), RecordingTrial(3)
    arch_a, arch_b = sample(space, a), sample(space, b)
    assert a.calls == b.calls and arch_a.id == arch_b.id
    labels = [name for name, _ in a.calls]
    assert len(labels) == len(set(labels))
    # Calls come in dimensions() order and with the same choices.
    dims = {d.label: d.choices for d in dimensions(space)}
    order = list(dims)
    assert labels == sorted(labels, key=order.index)
    assert all(dims[name] == choices for name, choices in a.calls)


def test_sample_with_optuna_trial():
    space = shipped("mobile")

    def run() -> tuple[list[str], list[list[str]]]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        ids, labels = [], []
        for _ in range(5):
            spy = Spy(study.ask())
            arch = sample(space, spy)
            assert spy.used == {"suggest_categorical"}
            assert spy.trial.params == encode(space, arch)
            ids.append(arch.id)
            labels.append(list(spy.trial.params))
        return ids, labels

    first, second = run(), run()
    assert first == second
    assert len(set(first[0])) == 5


def test_tpe_handles_conditional_params():
    space = shipped("tiny")
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
    study = optuna.create_study(sampler=sampler)

    def objective(trial) -> float:
        arch = sample(space, trial)
        return arch.num_blocks + arch.out_channels / 100

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study.optimize(objective, n_trials=15)
    states = {t.state for t in study.trials}
    assert states == {optuna.trial.TrialState.COMPLETE}


def test_sample_random_seeded():
    space = shipped("tiny")
    first = [sample_random(space, np.random.default_rng(7)).id for _ in range(3)]
    assert len(set(first)) == 1
    assert sample_random(space, 7).id == first[0]
    assert len({sample_random(space, s).id for s in range(10)}) == 10


# -- built networks (property-based) ---------------------------------------------------


def draw_arch(data, space: SearchSpace) -> Architecture:
    params = walk(space, lambda d: data.draw(st.sampled_from(d.choices), label=d.label))
    return decode(space, params)


def forward(arch: Architecture) -> torch.Size:
    # One intra-op thread: batch-1 inference gains nothing from more, and with other
    # processes on the cores (pytest -n 2 on 2 cores) oversubscribed torch threads spin
    # and run ~10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build(arch).eval()
        x = torch.randn(1, arch.in_channels, arch.resolution, arch.resolution)
        with torch.inference_mode():
            return model(x).shape
    finally:
        torch.set_num_threads(threads)


# Derandomised (no example database): the same examples on every run and machine.
SLOW = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(SLOW, max_examples=25)
@given(data=st.data())
def test_tiny_members_build_and_run(data):
    arch = draw_arch(data, shipped("tiny"))
    assert forward(arch) == (1, arch.num_classes)


@settings(SLOW, max_examples=15)
@given(data=st.data())
def test_mobile_members_build_and_run_small_input(data):
    arch = draw_arch(data, shipped("mobile").with_data(resolution=[32, 64]))
    assert forward(arch) == (1, 1000)


@settings(SLOW, max_examples=10)
@given(data=st.data())
def test_mobile_members_build_and_run_own_resolutions(data):
    arch = draw_arch(data, shipped("mobile"))
    assert forward(arch) == (1, 1000)


def test_mobile_at_224():
    space = shipped("mobile")
    params = walk(space, lambda d: 224 if d.label == "resolution" else d.choices[-1])
    arch = decode(space, params)
    assert arch.resolution == 224 and forward(arch) == (1, 1000)


# -- reference architectures -------------------------------------------------------------


def test_reference_membership(efficientnet_b0, mobilenet_v2):
    mobile = shipped("mobile")
    # B0 is a member: a search can be warm-started from it (enqueue_trial(encode(...))).
    params = encode(mobile, efficientnet_b0)
    assert decode(mobile, params).id == efficientnet_b0.id
    # MobileNetV2 is not (its norm_eps / drop_path differ from the space's fixed ones) ...
    assert not contains(mobile, mobilenet_v2)
    with pytest.raises(NasError) as err:
        encode(mobile, mobilenet_v2)
    assert err.value.field == "norm_eps"
    # ... though its stage skeleton is, with B0's training constants.
    assert contains(mobile, mobilenet_v2.replace(norm_eps=1e-3, drop_path=0.2))
    tiny = shipped("tiny")
    assert not contains(tiny, efficientnet_b0) and not contains(tiny, mobilenet_v2)


def test_b0_warm_start_enqueue(efficientnet_b0):
    space = shipped("mobile")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(encode(space, efficientnet_b0))
    assert sample(space, study.ask()).id == efficientnet_b0.id


# -- loading -------------------------------------------------------------------------------


def test_load_by_name_and_path():
    names = list_spaces()
    assert {"mobile", "tiny"} <= set(names)
    for name in ("mobile", "tiny"):
        space = load_space(name)
        assert space.name == name and space.source.endswith(f"{name}.toml")
        assert size(space) > 1
        assert load_space(Path(space.source)) == space
        assert load_space(space.source) == space


def test_name_defaults_to_file_stem(tmp_path):
    text = "\n".join(line for line in SMALL.splitlines() if not line.startswith("name"))
    assert load_space(write(tmp_path, text, "other.toml")).name == "other"


def assert_bad(path: Path, field: str, match: str) -> NasError:
    with pytest.raises(NasError, match=match) as err:
        load_space(path)
    line = str(err.value)
    assert "\n" not in line and str(path) in line and field in line
    assert err.value.field == field
    return err.value


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "field", "match"),
    [
        ("num_classes = 5", "num_classes = 5\ncolour = 3", "colour", "unknown key"),
        ('op = ["dil", "ds", "skip"]', 'op = ["dil", "ds", "bogus"]', "stages[1].op", "op"),
        ("kernel = [3, 7]", "kernel = [3, 4]", "stages[2].kernel", "kernel"),
        ("channels = [8, 16]", "channels = [8, -16]", "stem.channels", "positive"),
        ("out_channels = [16, 24]", "out_channels = [16, -24]", "stages[2].out_channels", "posit"),
        ("stride = 2", "stride = [2, 3]", "stages[2].stride", "stride"),
        ("kernel = [3, 7]", "kernel = [3, 3]", "stages[2].kernel", "duplicate"),
        ("kernel = [3, 7]", "kernel = []", "stages[2].kernel", "empty"),
        ("kernel = [3, 7]", 'kernel = [3, "7"]', "stages[2].kernel", "integer"),
        ("resolution = 16", "resolution = 16.0", "resolution", "integer"),
        ("dilation = [2, 3]", "dilation = [1, 2]", "stages[1].dil.dilation", "dilation"),
        ("dilation = [2, 3]", "se_ratio = 0.25", "stages[1].dil.se_ratio", "does not read"),
        ("  [stages.dil]", "  [stages.ir]", "stages[1].ir", "not one of this stage's ops"),
        ("  [stages.dil]", "  [stages.nope]", "stages[1].nope", "unknown op"),
        ("resolution = 16", "resolution = [16, 0]", "resolution", "positive"),
        ("[[stages]]\nop", "[[stages]]\nrepeat = 2\nop", "stages[0].repeat", "unknown key"),
        (  # a field no op of the stage reads
            'op = ["dil", "ds", "skip"]',
            'op = ["dil", "ds", "skip"]\nexpansion = 6',
            "stages[1].expansion",
            "no op of this stage",
        ),
    ],
)
def test_bad_space_files(tmp_path, old, new, field, match):
    assert_bad(write(tmp_path, replace_once(SMALL, old, new)), field, match)


def test_skip_cannot_change_channels(tmp_path):
    # The previous stage's out_channels can be 16 or 24; a skip stage to 16 breaks at 24.
    text = SMALL + '[[stages]]\nop = ["ir", "skip"]\nout_channels = 16\nkernel = 3\n'
    err = assert_bad(write(tmp_path, text), "stages[3].out_channels", "skip cannot change")
    assert "24" in str(err) and "stages[2].out_channels" in str(err)


def test_malformed_toml(tmp_path):
    path = write(tmp_path, SMALL.replace("num_classes = 5", "num_classes = = 5"))
    with pytest.raises(NasError, match="malformed TOML") as err:
        load_space(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert "line" in str(err.value)


def test_unknown_space_name():
    with pytest.raises(NasError, match="unknown search space 'mobil'") as err:
        load_space("mobil")
    assert "mobile" in str(err.value) and "tiny" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(NasError, match="cannot read") as err:
        load_space(tmp_path / "none.toml")
    assert str(tmp_path / "none.toml") in str(err.value)


def test_small_space_labels_in_walk_order(small):
    params = enumerate_params(small)[0]
    assert list(params) == [
        "stem_channels",
        "s0_op",
        "s0_kernel",
        "s1_op",
        "s1_kernel",
        "s1_dil_dilation",
        "s2_op",
        "s2_out_channels",
        "s2_kernel",
        "s2_expansion",
        "s2_se_ratio",
    ]
    assert list(walk(small, lambda d: d.choices[0])) == list(params)
    combos = itertools.product(*(d.choices for d in dimensions(small)))
    assert sum(1 for _ in combos) > SMALL_SIZE  # conditions matter
