"""The genotype: canonical JSON, stable ids, compact strings, strict validation."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.core.errors import NasError
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.ops import OPS


def test_json_round_trip(efficientnet_b0):
    text = efficientnet_b0.to_json()
    again = Architecture.from_json(text)
    assert again == efficientnet_b0
    assert again.to_json() == text


def test_canonical_json_is_sorted_and_complete(mobilenet_v2):
    data = json.loads(mobilenet_v2.to_json())
    assert list(data) == sorted(data)
    assert set(data["stages"][0]) == {
        "op", "out_channels", "repeats", "stride", "kernel", "expansion", "dilation", "se_ratio", "activation"
    }  # fmt: skip


def test_id_is_sha256_of_canonical_json_without_name(mobilenet_v2):
    body = json.loads(mobilenet_v2.to_json())
    del body["name"]
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert mobilenet_v2.id == expected
    assert mobilenet_v2.replace(name="renamed").id == mobilenet_v2.id
    assert mobilenet_v2.replace(resolution=192).id != mobilenet_v2.id


def test_id_is_stable_across_processes(mobilenet_v2, efficientnet_b0):
    code = (
        "import sys; from nas.model.reference import load_arch; "
        "print(load_arch('mobilenet_v2').id, load_arch('efficientnet_b0').id)"
    )
    ids = set()
    for seed in ("0", "12345"):  # different hash randomisation in each process
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        ids.add(out.stdout.strip())
    assert ids == {f"{mobilenet_v2.id} {efficientnet_b0.id}"}


def test_int_and_float_give_the_same_genotype():
    a = Stage("ir", 16, expansion=6, se_ratio=0)
    b = Stage("ir", 16, expansion=6, se_ratio=0.0)
    assert a == b and json.dumps(vars(a)) == json.dumps(vars(b))


@pytest.mark.parametrize(
    "text",
    [
        "ir_r2_k5_s2_e6_c40_se0.25_asilu",
        "ir_r1_k3_s1_e1_c16_arelu6",
        "ds_r3_k7_s1_c64_d2_se0.25_ahardswish",
        "conv_r1_k1_s2_c8_arelu",
        "dil_r2_k5_s1_c32_d3_asilu",
        "skip_r1_s1_c32",
        "zero_r1_s2_c32",
        "maxpool_r1_k3_s2_c24",
        "avgpool_r1_k2_s1_c24",
    ],
)
def test_compact_string_round_trip(text):
    stage = Stage.parse(text)
    assert stage.compact == text
    assert Stage.parse(stage.compact) == stage


def test_compact_matches_timm_style():
    stage = Stage(
        "ir", 40, repeats=2, stride=2, kernel=5, expansion=6, se_ratio=0.25, activation="silu"
    )
    assert stage.compact.startswith("ir_r2_k5_s2_e6_c40_se0.25")


@st.composite
def stages(draw) -> Stage:
    name = draw(st.sampled_from(sorted(OPS)))
    op = OPS[name]
    kw = {}
    if "kernel" in op.fields:
        kw["kernel"] = draw(st.sampled_from(op.kernels))
    if "expansion" in op.fields:
        kw["expansion"] = draw(st.sampled_from(op.expansions))
    if "dilation" in op.fields:
        kw["dilation"] = draw(st.sampled_from(op.dilations))
    if "se_ratio" in op.fields:
        kw["se_ratio"] = draw(st.sampled_from([0.0, 0.125, 0.25, 0.5]))
    if "activation" in op.fields:
        kw["activation"] = draw(st.sampled_from(["relu", "relu6", "silu", "hardswish", "none"]))
    return Stage(
        name,
        draw(st.integers(1, 64)),
        repeats=draw(st.integers(1, 4)),
        stride=draw(st.sampled_from([1, 2])),
        **kw,
    )


@settings(max_examples=200, deadline=None)
@given(stages())
def test_any_stage_round_trips_through_compact_string(stage):
    assert Stage.parse(stage.compact) == stage


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Stage("conv", 16, kernel=4), "kernel"),
        (lambda: Stage("conv", -16), "out_channels"),
        (lambda: Stage("conv", 16, expansion=6), "expansion"),  # conv does not read expansion
        (lambda: Stage("ir", 16, expansion=6, activation="gelu"), "activation"),
        (lambda: Stage("dil", 16, dilation=1), "dilation"),
        (lambda: Stage("ir", 16, stride=3), "stride"),
        (lambda: Stage("nope", 16), "op"),
        (lambda: Stem(16, kernel=4), "kernel"),
        (lambda: Head(channels=-1), "channels"),
        (lambda: Head(dropout=1.5), "dropout"),
    ],
)
def test_invalid_values_name_the_field(make, field):
    with pytest.raises(NasError) as info:
        make()
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_channel_flow_is_checked():
    with pytest.raises(NasError, match=r"stages\[1\]\.out_channels"):
        Architecture(
            resolution=32,
            num_classes=10,
            stem=Stem(16),
            stages=(Stage.parse("conv_r1_k3_s1_c24_arelu"), Stage.parse("skip_r1_s1_c32")),
        )


def test_from_dict_accepts_compact_stages_and_rejects_unknown_keys(mobilenet_v2):
    data = json.loads(mobilenet_v2.to_json())
    data["stages"] = [s.compact for s in mobilenet_v2.stages]
    assert Architecture.from_dict(data) == mobilenet_v2
    data["colour"] = "red"
    with pytest.raises(NasError, match="colour: unknown field"):
        Architecture.from_dict(data, source="m.json")
