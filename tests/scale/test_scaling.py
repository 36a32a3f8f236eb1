"""Compound scaling against hand arithmetic, the published EfficientNets and a second
implementation (the built torch module)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from nas.core.errors import NasError
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.cost import cost
from nas.model.reference import load_arch
from nas.scale.compound import (
    EFFICIENTNET_COEFFICIENTS,
    EFFICIENTNET_MULTIPLIERS,
    Coefficients,
    Multipliers,
    efficientnet,
    grid,
    grid_by,
    round_filters,
    round_repeats,
    round_resolution,
    scale,
)
from nas.scale.member import family_member
from nas.space.searchspace import load_space, sample_random
from tests.oracles import counted_params


def macs(arch: Architecture) -> int:
    return cost(arch).macs


def small(*stages: str, res: int = 32, stem: int = 16, head: int = 64) -> Architecture:
    """A tiny-space-like network: 1 input channel, 10 classes, stem stride 1."""
    return Architecture(
        resolution=res,
        num_classes=10,
        in_channels=1,
        stem=Stem(stem, stride=1),
        stages=tuple(Stage.parse(s) for s in stages),
        head=Head(head),
        name="small",
    )


# -- rounding rules, by hand -----------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "width", "kw", "expected"),
    [
        # f = 35.2; int(35.2 + 4) = 39; 39 // 8 * 8 = 32; 32 >= 0.9 * 35.2 = 31.68 -> 32
        (32, 1.1, {}, 32),
        # f = 44.0; int(48.0) = 48 -> 48
        (40, 1.1, {}, 48),
        # f = 123.2; int(127.2) = 127; 127 // 8 * 8 = 120; 120 >= 110.88 -> 120
        (112, 1.1, {}, 120),
        # f = 1408; int(1412) = 1412; 1412 // 8 * 8 = 1408 (B2's head)
        (1280, 1.1, {}, 1408),
        # f = 134.4; int(138.4) = 138; 138 // 8 * 8 = 136 (B3's stage 5)
        (112, 1.2, {}, 136),
        # f = 57.6; int(61.6) = 61; 61 // 8 * 8 = 56; 56 >= 51.84 -> 56 (B6's stem)
        (32, 1.8, {}, 56),
        # a tie rounds up: f = 20; int(24) = 24 -> 24
        (20, 1.0, {}, 24),
        # width 1.0 keeps a multiple of 8: int(28) = 28; 28 // 8 * 8 = 24
        (24, 1.0, {}, 24),
        # the +divisor branch, at width 1.0: f = 11; int(15) = 15; 15 // 8 * 8 = 8;
        # 8 < 0.9 * 11 = 9.9 -> 8 + 8 = 16
        (11, 1.0, {}, 16),
        # +divisor with divisor 16: f = 20; int(28) = 28; 28 // 16 * 16 = 16; 16 < 18 -> 32
        (20, 1.0, {"divisor": 16}, 32),
        # min_depth defaults to the divisor: f = 4; int(8) // 8 * 8 = 8; max(8, 8) = 8
        (16, 0.25, {}, 8),
        # explicit min_depth: f = 4; max(16, 8) = 16; 16 >= 3.6 -> 16
        (16, 0.25, {"min_depth": 16}, 16),
        # f = 32; int(36) // 8 * 8 = 32; max(48, 32) = 48
        (64, 0.5, {"min_depth": 48}, 48),
    ],
)
def test_round_filters_by_hand(channels, width, kw, expected):
    assert round_filters(channels, width, **kw) == expected


def test_round_filters_keeps_b0_channels_at_width_one():
    for c in (32, 16, 24, 40, 80, 112, 192, 320, 1280):
        assert round_filters(c, 1.0) == c


@pytest.mark.parametrize(
    ("repeats", "depth", "expected"),
    [
        (1, 1.0, 1),
        (1, 1.1, 2),  # ceil(1.1)
        (3, 1.1, 4),  # 1.1 * 3 = 3.3000000000000003 -> 4
        (4, 1.1, 5),  # ceil(4.4)
        (3, 1.2, 4),  # 1.2 * 3 = 3.5999999999999996 -> 4
        (2, 3.1, 7),  # ceil(6.2): B7's stage 2
        (4, 3.1, 13),  # ceil(12.4): B7's stage 6
        (1, 1.0001, 2),  # any depth above 1 doubles a one-block stage
    ],
)
def test_round_repeats_by_hand(repeats, depth, expected):
    assert round_repeats(repeats, depth) == expected


@pytest.mark.parametrize(
    ("base", "r", "multiple", "expected"),
    [
        (224, 1.0, 1, 224),
        (224, 1.15, 1, 258),  # 257.6 -> 258
        (224, 1.15, 8, 256),  # 258 / 8 = 32.25 -> 32 * 8
        (32, 1.15**2, 1, 42),  # 32 * 1.3225 = 42.32 -> 42
        (36, 1.0, 8, 40),  # 36 / 8 = 4.5: ties round up -> 5 * 8
        (28, 1.0, 32, 32),  # 28 / 32 = 0.875 -> 1 * 32
        (5, 0.5, 8, 8),  # 2.5 -> 3; 3 / 8 -> 0; never below the multiple
    ],
)
def test_round_resolution_by_hand(base, r, multiple, expected):
    assert round_resolution(base, r, multiple) == expected


# -- the published EfficientNets --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # REFERENCE-ARCHS.md (the reference implementation's counts, 1000 classes)
        ("b0", 5_288_548),
        ("b1", 7_794_184),
        ("b2", 9_109_994),
        # torchvision's EfficientNet_B3..B7_Weights num_params
        ("b3", 12_233_232),
        ("b4", 19_341_616),
        ("b5", 30_389_784),
        ("b6", 43_040_704),
        ("b7", 66_347_960),
    ],
)
def test_efficientnet_parameter_counts(name, params):
    assert cost(efficientnet(name)).params == params


def test_b0_is_the_shipped_b0():
    b0 = load_arch("efficientnet_b0")
    assert efficientnet("b0").id == b0.id


def test_b1_table():
    b1 = efficientnet("b1")
    # depth 1.1 on B0's (1, 2, 2, 3, 3, 4, 1): 1.1, 2.2, 2.2, 3.3, 3.3, 4.4, 1.1 -> ceil
    assert [s.repeats for s in b1.stages] == [2, 3, 3, 4, 4, 5, 2]
    # width 1.0: B0's channels are multiples of 8, so unchanged
    assert [s.out_channels for s in b1.stages] == [16, 24, 40, 80, 112, 192, 320]
    assert (b1.stem.channels, b1.head.channels) == (32, 1280)
    assert (b1.resolution, b1.head.dropout, b1.name) == (240, 0.2, "efficientnet_b1")


def test_b2_table():
    b2 = efficientnet("efficientnet-B2")
    # width 1.1: 16 -> 17.6 -> int(21.6) // 8 * 8 = 16; 24 -> 26.4 -> 24; 40 -> 44 -> 48;
    # 80 -> 88 -> int(92) // 8 * 8 = 88; 112 -> 120 (above); 192 -> 211.2 -> int(215.2)
    # // 8 * 8 = 208; 320 -> 352 -> int(356) // 8 * 8 = 352; stem 32 (above); head 1408
    assert [s.out_channels for s in b2.stages] == [16, 24, 48, 88, 120, 208, 352]
    assert (b2.stem.channels, b2.head.channels) == (32, 1408)
    # the reference's head (round_filters(1280)) equals torchvision's 4 x the last stage
    assert b2.head.channels == 4 * b2.stages[-1].out_channels
    # depth 1.2: 1.2, 2.4, 2.4, 3.6, 3.6, 4.8, 1.2 -> ceil
    assert [s.repeats for s in b2.stages] == [2, 3, 3, 4, 4, 5, 2]
    assert (b2.resolution, b2.head.dropout) == (260, 0.3)
    # kept from B0: kernels, strides, expansions, SE, activations, eps, drop path
    b0 = load_arch("efficientnet_b0")
    for s0, s2 in zip(b0.stages, b2.stages, strict=True):
        assert (s0.kernel, s0.stride, s0.expansion, s0.se_ratio, s0.activation) == (
            s2.kernel,
            s2.stride,
            s2.expansion,
            s2.se_ratio,
            s2.activation,
        )
    assert (b2.norm_eps, b2.drop_path) == (b0.norm_eps, b0.drop_path)


def test_se_width_follows_the_scaled_block_input():
    # B2's stage 3 starts from stage 2's 48 channels (B0: 40): hidden 6 * 48 = 288 and
    # SE squeeze max(1, int(48 * 0.25)) = 12, as in the reference (B0: 240 -> 10).
    rows = {r.name: r.layer for r in cost(efficientnet("b2")).layers if r.layer.startswith("se")}
    assert rows["stages.3.0"] == "se 288->12->288"
    rows0 = {r.name: r.layer for r in cost(efficientnet("b0")).layers if r.layer.startswith("se")}
    assert rows0["stages.3.0"] == "se 240->10->240"


def test_b1_parameters_of_the_built_module():
    """A second implementation: the torch module's parameter numels."""
    b1 = efficientnet("b1")
    assert counted_params(b1) == cost(b1).params == 7_794_184


def test_published_table():
    assert set(EFFICIENTNET_MULTIPLIERS) == {f"b{i}" for i in range(8)}
    assert EFFICIENTNET_MULTIPLIERS["b4"] == (1.4, 1.8, 380, 0.4)
    assert EFFICIENTNET_MULTIPLIERS["b7"].resolution == 600


@pytest.mark.parametrize("name", ["b8", "efficientnet_b", "resnet50", ""])
def test_unknown_efficientnet(name):
    with pytest.raises(NasError, match="unknown EfficientNet") as err:
        efficientnet(name)
    assert err.value.field == "name"


# -- scale --------------------------------------------------------------------------


def test_scale_small_network():
    a = small("ir_r1_k3_s1_e6_c16", "ds_r2_k5_s2_c24_se0.25", "conv_r1_k3_s2_c40")
    s = scale(a, Multipliers(depth=1.5, width=1.5, resolution=1.25))
    # channels: 16 * 1.5 = 24 -> 24; 24 * 1.5 = 36 -> int(40) = 40; 40 * 1.5 = 60 ->
    # int(64) = 64; head 64 * 1.5 = 96 -> 96
    assert s.stem.channels == 24
    assert [st.out_channels for st in s.stages] == [24, 40, 64]
    assert s.head.channels == 96
    # repeats: ceil(1.5), ceil(3.0), ceil(1.5)
    assert [st.repeats for st in s.stages] == [2, 3, 2]
    assert s.resolution == 40  # 32 * 1.25
    assert s.name == "small_d1.5_w1.5_r1.25"
    assert [(st.op, st.kernel, st.stride, st.se_ratio) for st in s.stages] == [
        (st.op, st.kernel, st.stride, st.se_ratio) for st in a.stages
    ]


def test_scale_options():
    a = small("ir_r1_k3_s1_e6_c16", head=0)
    m = Multipliers(1.0, 2.0, 1.15)
    assert scale(a, m).head.channels == 0  # no head conv stays none
    assert scale(a, m).resolution == 37  # 36.8
    assert scale(a, m, resolution_multiple=8).resolution == 40  # 37 / 8 = 4.625 -> 5
    assert scale(a, m, resolution=48).resolution == 48
    assert scale(a, m, divisor=16).stages[0].out_channels == 32
    assert scale(a, Multipliers(1, 1, 1)).id == a.id


# -- coefficients and the grid ---------------------------------------------------------


def test_coefficients():
    c = EFFICIENTNET_COEFFICIENTS
    assert c.flops_factor == pytest.approx(1.2 * 1.21 * 1.3225)  # 1.92027
    m = c.at(2)
    assert (m.depth, m.width, m.resolution) == pytest.approx((1.44, 1.21, 1.3225))
    assert c.at(0) == Multipliers(1.0, 1.0, 1.0)


def test_grid_holds_efficientnet_and_the_constraint():
    points = grid()
    assert Coefficients(1.2, 1.1, 1.15) in points
    assert points == sorted(points, key=lambda c: (c.alpha, c.beta, c.gamma))
    assert len(set(points)) == len(points)
    for c in points:
        assert min(c.alpha, c.beta, c.gamma) >= 1.0
        assert max(c.alpha, c.beta, c.gamma) <= 2.0
        assert abs(c.alpha * c.beta**2 * c.gamma**2 - 2.0) <= 0.2 + 1e-9  # float slack


def test_grid_equals_exact_enumeration():
    """Oracle in exact rational arithmetic: i/20 for i = 20..40 on each axis."""
    axis = [Fraction(i, 20) for i in range(20, 41)]
    expected = {
        (a, b, g)
        for a, b, g in itertools.product(axis, axis, axis)
        if abs(a * b**2 * g**2 - 2) <= Fraction(1, 5)
    }
    got = {tuple(Fraction(round(x * 20), 20) for x in (c.alpha, c.beta, c.gamma)) for c in grid()}
    assert got == expected


def test_grid_options():
    coarse = grid(tolerance=0.05, step=0.1, target=2.0, lo=1.0, hi=1.5)
    assert Coefficients(1.2, 1.1, 1.2) in coarse  # 1.2 * 1.21 * 1.44 = 2.09
    assert all(abs(c.flops_factor - 2) <= 0.1 + 1e-9 for c in coarse)
    assert grid(tolerance=0.0, step=0.5, target=1.0, lo=1.0, hi=2.0) == [Coefficients(1, 1, 1)]


def test_grid_by_custom_ratio():
    # a made-up cost in which width and resolution count once, not twice
    def linear(c: Coefficients) -> float:
        return c.alpha * c.beta * c.gamma

    points = grid_by(linear, tolerance=0.05, step=0.1, hi=1.5)
    axis = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    expected = [
        Coefficients(a, b, g)
        for a, b, g in itertools.product(axis, axis, axis)
        if abs(a * b * g - 2.0) <= 0.1 + 1e-9
    ]
    assert points == expected
    assert Coefficients(1.4, 1.2, 1.2) in points  # 2.016
    assert Coefficients(1.2, 1.1, 1.15) not in grid_by(linear)  # 1.518 here, 1.92 in FLOPs
    assert grid_by(lambda c: c.flops_factor) == grid()


def test_grid_by_measured_macs():
    """The ratio can be a real cost: MACs of the phi = 1 network over the base's."""
    a = small("ir_r2_k3_s1_e6_c16", "ir_r2_k3_s2_e6_c24", "ir_r2_k5_s2_e6_c48_se0.25")
    base = macs(a)

    def ratio(c: Coefficients) -> float:
        return macs(scale(a, c.at(1))) / base

    points = grid_by(ratio, tolerance=0.1, step=0.1, hi=1.3)
    assert points
    for c in points:
        assert 1.8 <= macs(scale(a, c.at(1))) / base <= 2.2


# -- family members -------------------------------------------------------------------

#: Two-block stages: ceil(2 * 1.2**phi) moves in steps of 1.5x, not 2x, so the search
#: can land near the target. (A one-block stage doubles for any phi > 0; see below.)
SMALL = small(
    "ir_r2_k3_s1_e6_c16", "ir_r2_k3_s2_e6_c24", "ir_r2_k5_s2_e6_c48_se0.25", "ir_r2_k3_s1_e6_c64"
)


@pytest.mark.parametrize("phi", [1, 2])
def test_family_member_doubles_macs_per_step(phi):
    base = macs(SMALL)
    member, phi_eff = family_member(SMALL, EFFICIENTNET_COEFFICIENTS, phi, cost=macs)
    assert macs(member) == pytest.approx(2**phi * base, rel=0.10)
    assert abs(phi_eff - phi) <= 0.5
    assert member.id == scale(SMALL, EFFICIENTNET_COEFFICIENTS.at(phi_eff)).id
    # plain scaling at phi itself misses by more than 10% on this network
    plain = macs(scale(SMALL, EFFICIENTNET_COEFFICIENTS.at(phi)))
    assert abs(plain / (2**phi * base) - 1) > 0.10


def test_family_member_phi_zero_is_the_identity():
    def never(arch: Architecture) -> float:
        raise AssertionError("cost must not be called for phi = 0")

    member, phi_eff = family_member(SMALL, EFFICIENTNET_COEFFICIENTS, 0, cost=never)
    assert member is SMALL
    assert phi_eff == 0.0


def test_family_member_never_worse_than_plain_scaling():
    """phi itself is one of the candidates, so the pick is at least as close."""
    space = load_space("tiny")
    c = EFFICIENTNET_COEFFICIENTS
    for seed in range(12):
        a = sample_random(space, seed)
        base = macs(a)
        for phi in (1, 2):
            member, _ = family_member(a, c, phi, cost=macs, base_cost=base)
            plain = scale(a, c.at(phi))
            err = abs(math.log(macs(member) / (2**phi * base)))
            assert err <= abs(math.log(macs(plain) / (2**phi * base))) + 1e-12


def test_family_member_search_window():
    calls: list[str] = []

    def counting(arch: Architecture) -> float:
        calls.append(arch.id)
        return macs(arch)

    member, phi_eff = family_member(
        SMALL, EFFICIENTNET_COEFFICIENTS, 1.0, cost=counting, search_width=0
    )
    assert phi_eff == 1.0
    assert member.id == scale(SMALL, EFFICIENTNET_COEFFICIENTS.at(1)).id
    assert len(calls) == 2  # the base and the one candidate

    calls.clear()
    _, phi_eff = family_member(
        SMALL, EFFICIENTNET_COEFFICIENTS, 0.2, cost=counting, base_cost=macs(SMALL)
    )
    assert 0.0 <= phi_eff <= 0.7  # the window is clipped at 0
    assert len(calls) == len(set(calls))  # one cost call per distinct network

    # two steps leave phi = 1 off the lattice {0, 2} (0.5x and 2.39x the target); it
    # still competes, and wins at 1.24x
    _, phi_eff = family_member(
        SMALL, EFFICIENTNET_COEFFICIENTS, 1.0, cost=macs, search_width=1.0, steps=2
    )
    assert phi_eff == 1.0


def test_family_member_one_block_stage_limit():
    """Documented limit: ceil doubles a one-block stage for any phi' > 0, and here the
    added block of the dominant full-resolution conv stage costs twice the first
    (16 -> 16 against 8 -> 16 channels): MACs jump from 1x to 2.84x at phi' = 0.025 and
    are 3.24x at phi' = 0.5, the window's low end. 2x is out of reach."""
    a = small("conv_r1_k3_s1_c16", "ds_r1_k3_s2_c24", stem=8, head=0, res=16)
    base = macs(a)
    member, phi_eff = family_member(a, EFFICIENTNET_COEFFICIENTS, 1, cost=macs)
    assert macs(member) / base == pytest.approx(3.24, abs=0.01)
    assert phi_eff == 0.625  # 0.5 .. 0.625 give the same network; nearest phi wins


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Multipliers(depth=-1.0, width=1.0, resolution=1.0), "depth"),
        (lambda: Multipliers(depth=1.0, width=0.0, resolution=1.0), "width"),
        (lambda: Multipliers(depth=1.0, width=1.0, resolution=math.nan), "resolution"),
        (lambda: Coefficients(alpha=-1.2, beta=1.1, gamma=1.15), "alpha"),
        (lambda: Coefficients(alpha=1.2, beta=0, gamma=1.15), "beta"),
        (lambda: Coefficients(alpha=1.2, beta=1.1, gamma=math.inf), "gamma"),
        (lambda: EFFICIENTNET_COEFFICIENTS.at(math.nan), "phi"),
        (lambda: round_filters(32, -1.0), "width"),
        (lambda: round_filters(32, 1.0, divisor=0), "divisor"),
        (lambda: round_repeats(0, 1.1), "repeats"),
        (lambda: round_repeats(2, -1.1), "depth"),
        (lambda: round_resolution(224, 0.0), "resolution_multiplier"),
        (lambda: round_resolution(224, 1.0, 0), "resolution_multiple"),
        (lambda: grid(step=0.0), "step"),
        (lambda: grid(tolerance=-0.1), "tolerance"),
        (lambda: grid(lo=0.5), "lo"),
        (lambda: grid(lo=1.5, hi=1.2), "hi"),
        (lambda: family_member(SMALL, EFFICIENTNET_COEFFICIENTS, -1, cost=macs), "phi"),
        (lambda: family_member(SMALL, EFFICIENTNET_COEFFICIENTS, 1, cost=lambda a: 0), "base_cost"),
        (
            lambda: family_member(SMALL, EFFICIENTNET_COEFFICIENTS, 1, cost=macs, steps=0),
            "steps",
        ),
        (lambda: scale(SMALL, Multipliers(1, 1, 1), divisor=0), "divisor"),
    ],
)
def test_bad_input_names_the_field(make, field):
    with pytest.raises(NasError) as err:
        make()
    assert err.value.field == field
