"""Contract tests every registered op gets for free (a new op joins automatically)."""

from __future__ import annotations

import itertools

import pytest
import torch

from nas.core.errors import NasError
from nas.model.cost import block_output_shape, cost, layer_params
from nas.model.ops import OPS, BlockSpec
from nas.model.ops.cell import EXAMPLE_CELL
from nas.model.ops.layers import ACTIVATIONS, make_activation


def variants(name: str) -> list[BlockSpec]:
    """Valid blocks of op ``name`` over strides, kernels and channel changes."""
    op = OPS[name]
    kernels = op.kernels if "kernel" in op.fields else (3,)
    out: list[BlockSpec] = []
    for stride, kernel, cout in itertools.product((1, 2), kernels, (8, 12)):
        kw: dict = {"kernel": kernel}
        if "expansion" in op.fields:
            kw["expansion"] = op.expansions[-1] if kernel == kernels[0] else op.expansions[0]
        if "dilation" in op.fields:
            kw["dilation"] = op.dilations[-1]
        if "se_ratio" in op.fields:
            kw["se_ratio"] = 0.25 if stride == 1 else 0.0
        if "activation" in op.fields:
            kw["activation"] = ACTIVATIONS[(kernel + stride) % len(ACTIVATIONS)]
        if op.reads_cell:
            kw["cell"] = EXAMPLE_CELL
        block = BlockSpec(name, cin=8, cout=cout, stride=stride, **kw)
        try:
            op.validate(block)
        except NasError:
            continue
        out.append(block)
    assert out, f"op {name} accepts none of the contract variants"
    return out


CASES = [
    pytest.param(b, id=f"{b.op}-s{b.stride}-k{b.kernel}-c{b.cout}")
    for n in sorted(OPS)
    for b in variants(n)
]


@pytest.mark.parametrize("block", CASES)
def test_output_shape_matches_cost_model(block):
    module = OPS[block.op].build(block).eval()
    with torch.inference_mode():
        y = module(torch.randn(2, block.cin, 9, 9))
    assert tuple(y.shape) == (2, *block_output_shape(block, (block.cin, 9, 9)))


@pytest.mark.parametrize("block", CASES)
def test_backward(block):
    module = OPS[block.op].build(block).train()
    x = torch.randn(2, block.cin, 9, 9, requires_grad=True)
    module(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if any(True for _ in module.parameters()):
        assert x.grad.abs().sum() > 0  # a learnable op passes gradient to its input


@pytest.mark.parametrize("block", CASES)
def test_parameter_count_equals_formula(block):
    op = OPS[block.op]
    counted = sum(p.numel() for p in op.build(block).parameters())
    assert counted == sum(layer_params(layer) for layer in op.layers(block))


@pytest.mark.parametrize("name", sorted(OPS))
def test_residual_flag_matches_module(name):
    """The cost model's residual flag must agree with what the module does: perturbing the
    main path's last BN to output zero leaves exactly the shortcut."""
    op = OPS[name]
    for block in variants(name):
        module = op.build(block).eval()
        bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if not bns:
            continue
        with torch.no_grad():
            bns[-1].weight.zero_()
            bns[-1].bias.zero_()
            x = torch.randn(1, block.cin, 9, 9)
            y = module(x)
        # With the main path silenced a residual block passes its input on (through its
        # final activation, for blocks that have one after the add, like ResNet's).
        after_add = getattr(module, "act", None) if op.residual(block) else None
        expected = after_add(x.clone()) if after_add is not None else x
        is_identity = y.shape == x.shape and torch.allclose(y, expected)
        assert is_identity == op.residual(block), block


def test_every_activation_builds():
    x = torch.linspace(-8, 8, 33)
    for name in ACTIVATIONS:
        y = make_activation(name)(x.clone())
        assert y.shape == x.shape
    assert torch.equal(make_activation("relu6")(x.clone()), x.clamp(0, 6))
    with pytest.raises(ValueError):
        make_activation("gelu")


def test_unknown_op_is_a_clear_error():
    from nas.model.ops import get_op

    with pytest.raises(NasError, match=r"op: unknown op 'conv4'"):
        get_op("conv4")


def test_cost_model_runs_on_single_op_networks():
    from nas.model.arch import Architecture, Stage, Stem

    for name in sorted(OPS):
        block = variants(name)[0]
        kw = {f: getattr(block, f) for f in OPS[name].fields}
        arch = Architecture(
            resolution=16,
            num_classes=3,
            stem=Stem(8, stride=1),
            stages=(Stage(name, out_channels=block.cout, stride=block.stride, **kw),),
            cell=block.cell,
        )
        assert cost(arch).params > 0
