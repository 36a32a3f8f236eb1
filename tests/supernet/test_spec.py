"""What a supernet covers, and one-line errors for what it does not."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nas.core.errors import NasError
from nas.model.arch import Head, Stage, Stem
from nas.space.searchspace import load_space, sample_random
from nas.supernet import Supernet, SupernetSpec, extract

BASE = sample_random(load_space("tiny"), 0)


def _stage(i: int, **changes: object) -> object:
    stages = list(BASE.stages)
    stages[i] = Stage(**{**stages[i].__dict__, **changes})  # type: ignore[arg-type]
    return BASE.replace(stages=tuple(stages))


OUTSIDE = {
    "stem width": (BASE.replace(stem=Stem(32)), "stem.channels"),
    "stem kernel": (BASE.replace(stem=Stem(16, kernel=5)), "stem.kernel"),
    "head width": (BASE.replace(head=Head(32)), "head.channels"),
    "op": (_stage(0, op="res", kernel=3, expansion=1, dilation=1, se_ratio=0.0), "stages[0].op"),
    "width": (_stage(1, out_channels=40), "stages[1].out_channels"),
    "depth": (_stage(2, repeats=3), "stages[2].repeats"),
    "stride": (_stage(3, stride=2), "stages[3].stride"),
    "activation": (_stage(0, activation="silu"), "stages[0].activation"),
    "resolution": (BASE.replace(resolution=64), "resolution"),
    "stages": (BASE.replace(stages=BASE.stages[:3]), "stages"),
}


@pytest.mark.parametrize("case", list(OUTSIDE))
def test_outside_the_supernet_names_the_field(tiny_net: Supernet, case: str) -> None:
    arch, field = OUTSIDE[case]
    for call in (lambda: tiny_net(torch.zeros(1, 1, 8, 8), arch), lambda: extract(tiny_net, arch)):
        with pytest.raises(NasError) as info:
            call()
        assert info.value.field == field
        assert "\n" not in str(info.value) and str(info.value).startswith(field)


def test_field_choices_of_the_op(tiny_net: Supernet) -> None:
    """ir offers expansion 1/3/6 in tiny: 2 is refused under the ir stage's field."""
    arch = BASE.replace(stages=(Stage("ir", 8, expansion=2), *BASE.stages[1:]))
    with pytest.raises(NasError, match=r"^stages\[0\]\.expansion: 2 is not offered"):
        tiny_net.path(arch)


def test_architecture_of_another_space(tiny_net: Supernet) -> None:
    mobile = sample_random(load_space("mobile"), 0).replace(resolution=32)
    with pytest.raises(NasError) as info:
        tiny_net.path(mobile)
    assert info.value.field == "num_classes"  # its first field that differs (1000 vs 10)


def test_cells_outside_the_supernet(tiny_net: Supernet) -> None:
    nb201 = load_space("nasbench201").with_data(in_channels=1, resolution=8)  # tiny's data
    spec = SupernetSpec.from_space(nb201)
    arch = sample_random(nb201, 0)
    with pytest.raises(NasError, match="has no cell") as info:
        tiny_net.spec.check(arch)
    assert info.value.field == "cell"
    narrow = replace(spec, cell={**spec.cell, "edge_2_1": ("none",)})
    arch = arch.replace(cell="|none~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|")
    with pytest.raises(NasError) as info:
        narrow.check(arch)
    assert info.value.field == "cell.edge_2_1"


def test_data_shape_must_be_fixed() -> None:
    with pytest.raises(NasError) as info:
        SupernetSpec.from_space(load_space("tiny").with_data(in_channels=[1, 3]))
    assert info.value.field == "in_channels"


def test_elastic_fields_are_read_from_the_space(tiny_net: Supernet) -> None:
    elastic = tiny_net.spec.elastic()
    for name in (
        "stem.channels",
        "stages[0].op",
        "stages[0].ir.expansion",
        "stages[0].dil.dilation",
        "stages[3].ds.se_ratio",
        "head.channels",
    ):
        assert name in elastic
    for fixed in ("stem.kernel", "stages[0].ir.dilation", "in_channels", "head.dropout"):
        assert fixed not in elastic


def test_families_per_op_and_structure(tiny_net: Supernet) -> None:
    """Per stage: one family per op, dilations apart, ir with and without expansion
    apart; a family holds as many blocks as the deepest choice."""
    for families in tiny_net.stages:
        assert sorted(families.keys()) == [
            "conv_d1",
            "dil_d2",
            "dil_d3",
            "ds_d1",
            "ir_d1_e1",
            "ir_d1_eN",
        ]
        assert all(len(blocks) == 2 for blocks in families.values())
    ir = tiny_net.stages[1]["ir_d1_eN"][0]
    assert ir.expand.conv.weight.shape == (16 * 6, 16, 1, 1)  # widest input x widest expansion
    assert ir.se.reduce.weight.shape == (4, 16 * 6, 1, 1)  # se_channels(16, 0.25) = 4
    assert tiny_net.stages[1]["ir_d1_eN"][1].expand.conv.weight.shape == (32 * 6, 32, 1, 1)


def test_fingerprint_follows_the_choices() -> None:
    tiny = load_space("tiny")
    a, b = SupernetSpec.from_space(tiny), SupernetSpec.from_space(load_space("tiny"))
    assert a == b and a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert SupernetSpec.from_space(tiny.with_data(resolution=8)).fingerprint != a.fingerprint
    assert SupernetSpec.from_space(load_space("mobile")).fingerprint != a.fingerprint
    assert a.to_dict()["stages"][0]["ir"]["expansion"] == [1, 3, 6]
