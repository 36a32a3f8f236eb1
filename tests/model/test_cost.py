"""The analytic cost model against textbook formulas, hand examples and counters."""

from __future__ import annotations

import pytest
import torch

from nas.core.errors import NasError
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.builder import build
from nas.model.cost import conv_output_size, cost, layer_macs, layer_params
from nas.model.ops import OPS, BlockSpec
from nas.model.ops.base import ConvLayer
from nas.model.ops.cell import EXAMPLE_CELL
from tests.oracles import counted_macs, counted_params


def arch_of(
    *stages: str, res: int = 32, stem: int = 16, stem_stride: int = 1, **kw
) -> Architecture:
    return Architecture(
        resolution=res,
        num_classes=10,
        stem=Stem(stem, stride=stem_stride),
        stages=tuple(Stage.parse(s) for s in stages),
        **kw,
    )


# -- textbook formulas ------------------------------------------------------------


@pytest.mark.parametrize(
    ("h", "k", "s", "p", "d", "expected"),
    [
        (224, 3, 2, 1, 1, 112),  # floor((224 + 2 - 3) / 2) + 1
        (7, 3, 2, 1, 1, 4),
        (5, 3, 1, 0, 1, 3),
        (32, 7, 1, 3, 1, 32),
        (32, 3, 1, 2, 2, 32),  # dilated "same": k_eff = 5, p = 2
        (32, 3, 1, 3, 3, 32),  # k_eff = 7, p = 3
        (10, 5, 2, 0, 1, 3),
    ],
)
def test_output_size_formula(h, k, s, p, d, expected):
    assert conv_output_size(h, k, s, p, d) == expected
    assert conv_output_size(h, k, s, p, d) == (h + 2 * p - (d * (k - 1) + 1)) // s + 1


def test_conv_parameter_formula():
    # C_out * (C_in * k * k + 1): 3x3, 64 -> 128 with bias, no BN.
    assert layer_params(ConvLayer(64, 128, 3, bias=True, norm=False)) == 73_856
    assert layer_params(ConvLayer(3, 64, 3, norm=False)) == 1_728


@pytest.mark.parametrize(
    ("cin", "cout", "weights", "standard"),
    [(256, 256, 67_840, 589_824), (128, 256, 33_920, 294_912)],
)
def test_depthwise_separable_weights(cin, cout, weights, standard):
    # Weights only: C_in * k^2 (depthwise) + C_in * C_out (pointwise), against C_out * C_in * k^2.
    dw = ConvLayer(cin, cin, 3, groups=cin, norm=False)
    pw = ConvLayer(cin, cout, 1, norm=False)
    assert layer_params(dw) + layer_params(pw) == weights == cin * 9 + cin * cout
    assert layer_params(ConvLayer(cin, cout, 3, norm=False)) == standard == cout * cin * 9


def test_depthwise_separable_block_parameters():
    # Our ds block adds BN (weight + bias) after both convs: 256->256 gives the 68,864.
    block = BlockSpec("ds", cin=256, cout=256, kernel=3)
    params = sum(p.numel() for p in OPS["ds"].build(block).parameters())
    assert params == 256 * 9 + 2 * 256 + 256 * 256 + 2 * 256 == 68_864


def test_flops_formula():
    layer = ConvLayer(64, 128, 3, stride=2)
    out = (128, 28, 28)
    assert 2 * layer_macs(layer, out) == 2 * 128 * 64 * 3 * 3 * 28 * 28


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        # stem 3x3 s1 then n stacked 3x3 convs: 1 + 2 * (n + 1)
        (("conv_r1_k3_s1_c16_arelu",), 5),
        (("conv_r2_k3_s1_c16_arelu",), 7),
        # stem 3x3 (rf 3), dilated 3x3 d2 acts as 5x5: 3 + 4 = 7
        (("dil_r1_k3_s1_c16_d2_arelu",), 7),
        # stem 3x3, conv 3x3 /2 (rf 5, jump 2), conv 3x3: 5 + 2 * 2 = 9
        (("conv_r1_k3_s2_c16_arelu", "conv_r1_k3_s1_c16_arelu"), 9),
        # ir: 1x1, dw 5x5 /2 (3 + 4 = 7, jump 2), 1x1; then ds 3x3 d3 (k_eff 7): 7 + 6 * 2 = 19
        (("ir_r1_k5_s2_e6_c16_arelu", "ds_r1_k3_s1_c16_d3_arelu"), 19),
    ],
)
def test_receptive_field(stages, expected):
    arch = arch_of(*stages)
    assert cost(arch).receptive_field == expected


def test_receptive_field_sum_formula():
    """Check the walker against the closed form on a random-ish chain."""
    specs = [
        "conv_r1_k5_s2_c16_arelu",
        "dil_r1_k3_s1_c16_d3_arelu",
        "maxpool_r1_k3_s2_c16",
        "conv_r1_k7_s1_c24_arelu",
    ]
    arch = arch_of(*specs, res=64)
    chain = [(3, 1), (5, 2), (3 * 2 + 1, 1), (3, 2), (7, 1)]  # (k_eff, stride), stem first
    rf, jump = 1, 1
    for k, s in chain:
        rf += (k - 1) * jump
        jump *= s
    assert rf == 1 + 2 + 4 * 1 + 6 * 2 + 2 * 2 + 6 * 4 == 47
    assert cost(arch).receptive_field == rf


# -- hand examples on the real modules ---------------------------------------------

HAND_INPUT = [[1, 0, 2, 1, 0], [0, 1, 0, 1, 1], [1, 0, 1, 0, 0], [0, 0, 1, 1, 0], [1, 1, 0, 0, 1]]
HAND_FILTER = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
HAND_OUTPUT = [[6, 1, 4], [1, 4, 2], [3, 2, 3]]


def test_conv_op_is_cross_correlation():
    block = BlockSpec("conv", cin=1, cout=1, kernel=3, activation="none")
    module = OPS["conv"].build(block, eps=1e-12).eval()
    with torch.no_grad():
        module.conv.weight.copy_(
            torch.tensor(HAND_FILTER, dtype=torch.float64).float().view(1, 1, 3, 3)
        )
        y = module(torch.tensor(HAND_INPUT, dtype=torch.float32).view(1, 1, 5, 5))
    # "same" padding: the interior 3x3 is the unpadded (valid) result.
    assert y.shape == (1, 1, 5, 5)
    assert y[0, 0, 1:4, 1:4].tolist() == HAND_OUTPUT


@pytest.mark.parametrize(("op", "expected"), [("maxpool", 4.0), ("avgpool", 2.5)])
def test_pooling_hand_example(op, expected):
    module = OPS[op].build(BlockSpec(op, cin=1, cout=1, kernel=2, stride=2))
    y = module(torch.tensor([[1.0, 3.0], [2.0, 4.0]]).view(1, 1, 2, 2))
    assert y.flatten().tolist() == [expected]


def test_peak_activation_by_hand():
    # 1x8x8 input, stem conv 3x3 -> 4x8x8, ir e2 4 -> 4 (residual): expand 1x1 -> 8x8x8,
    # dw 3x3 -> 8x8x8, project -> 4x8x8; head: linear 4 -> 10.
    arch = Architecture(
        resolution=8,
        in_channels=1,
        num_classes=10,
        stem=Stem(4, stride=1),
        stages=(Stage.parse("ir_r1_k3_s1_e2_c4_arelu"),),
    )
    x, s, e = 64, 4 * 64, 8 * 64
    live = [
        x + s,  # stem: input + output
        s + e,  # expand: block input (= its input) + output
        s + e + e,  # dw: block input kept for the residual + input + output
        s + e + s,  # project
        4 + 10,  # linear after global pooling
    ]
    c = cost(arch)
    assert [r.live_elements for r in c.layers] == live
    assert c.peak_activation_elements == 2 * e + s == 1280
    assert c.peak_activation_bytes() == 4 * 1280


# -- analytic == counted -------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["mobilenet_v2", "efficientnet_b0"])
def test_reference_costs_equal_counted(request, fixture):
    arch = request.getfixturevalue(fixture)
    c = cost(arch)
    assert c.params == counted_params(arch)
    assert c.macs == counted_macs(arch)


def test_published_macs_of_references(mobilenet_v2, efficientnet_b0):
    # MobileNetV2 1.0 is 300M MACs, EfficientNet-B0 0.39B "FLOPs" (multiply-adds).
    assert round(cost(mobilenet_v2).macs / 1e6) == 301
    assert round(cost(efficientnet_b0).macs / 1e7) == 39


def every_op_arch() -> Architecture:
    """A small network that uses every registered op (new ops join automatically)."""
    stages = []
    for name, op in sorted(OPS.items()):
        kernel = 3 if 3 in op.kernels else op.kernels[0]
        kw = {"kernel": kernel} if "kernel" in op.fields else {}
        if "expansion" in op.fields:
            kw["expansion"] = max(op.expansions)
        if "dilation" in op.fields:
            kw["dilation"] = max(op.dilations)
        if "se_ratio" in op.fields:
            kw["se_ratio"] = 0.25
        for stride in (1, 2):
            try:
                op.validate(BlockSpec(name, cin=16, cout=16, stride=stride, **kw))
            except NasError:
                continue  # e.g. skip cannot reduce resolution
            stages.append(Stage(name, out_channels=16, stride=stride, **kw))
    cell = EXAMPLE_CELL if any(OPS[s.op].reads_cell for s in stages) else ""
    return Architecture(
        resolution=64, num_classes=7, stem=Stem(16, stride=1), stages=tuple(stages), cell=cell
    )


def test_every_op_costs_equal_counted():
    arch = every_op_arch()
    c = cost(arch)
    assert c.params == counted_params(arch)
    assert c.macs == counted_macs(arch)


def test_layer_shapes_equal_module_outputs():
    arch = every_op_arch().replace(head=Head(channels=32))
    model = build(arch).eval()
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        model.stem.register_forward_hook(lambda m, i, o: seen.__setitem__("stem", o.shape[1:]))
    ]
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            name = f"stages.{i}.{j}"
            hooks.append(
                block.register_forward_hook(
                    lambda m, i_, o, n=name: seen.__setitem__(n, o.shape[1:])
                )
            )
    with torch.inference_mode():
        y = model(torch.randn(1, 3, arch.resolution, arch.resolution))
    for h in hooks:
        h.remove()
    last_row = {r.name: r.out_shape for r in cost(arch).layers}  # later rows of a block win
    for name, shape in seen.items():
        assert last_row[name] == tuple(shape), name
    assert cost(arch).output_shape == (y.shape[1], 1, 1)
