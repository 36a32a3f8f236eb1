"""Extraction: the built network with the extracted state computes the supernet's path.

Every op type and every elastic dimension (kernel 1/3/5/7 through the transformation,
expansion, width, depth, stride, SE on/off and its ratio, dilation, activation, stem,
head, norm_eps) is one case on the ``allops`` space; random architectures of ``allops``,
``tiny`` and ``mobile`` cover the combinations.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest
import torch

from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.builder import build
from nas.space.searchspace import SearchSpace, load_space, sample_random
from nas.supernet import Supernet, extract, extract_network
from nas.supernet.spec import SupernetSpec
from tests.supernet.helpers import A, allops_arch, perturb

STAGE0 = {
    "conv-k1": Stage("conv", 6, kernel=1, activation=A),
    "conv-k3-silu": Stage("conv", 4, kernel=3, activation="silu"),
    "conv-k5-s2": Stage("conv", 6, stride=2, kernel=5, activation=A),
    "conv-k7-r3": Stage("conv", 4, repeats=3, kernel=7, activation=A),
    "dil-d2-k3": Stage("dil", 6, kernel=3, dilation=2, activation=A),
    "dil-d3-k5-s2": Stage("dil", 4, stride=2, kernel=5, dilation=3, activation=A),
    "dil-d2-k7-r2": Stage("dil", 6, repeats=2, kernel=7, dilation=2, activation=A),
    "ds-k3": Stage("ds", 6, kernel=3, activation=A),
    "ds-k5-se0.25": Stage("ds", 4, kernel=5, se_ratio=0.25, activation="silu"),
    "ds-k3-se0.5-d2-s2-r2": Stage(
        "ds", 6, repeats=2, stride=2, kernel=3, dilation=2, se_ratio=0.5, activation=A
    ),
    "ir-e1-k3": Stage("ir", 4, kernel=3, expansion=1, activation=A),
    "ir-e1-k5-se0.25-d2": Stage(
        "ir", 6, kernel=5, expansion=1, dilation=2, se_ratio=0.25, activation=A
    ),
    "ir-e2-k5-se0.25": Stage("ir", 6, kernel=5, expansion=2, se_ratio=0.25, activation=A),
    "ir-e3-k7-se0.5-r3": Stage(
        "ir", 4, repeats=3, kernel=7, expansion=3, se_ratio=0.5, activation="silu"
    ),
    "ir-e3-k3-d2-s2": Stage("ir", 6, stride=2, kernel=3, expansion=3, dilation=2, activation=A),
    "res-k3": Stage("res", 4, kernel=3, activation=A),
    "res-k5-s2-r2": Stage("res", 6, repeats=2, stride=2, kernel=5, activation=A),
    "res-k3-r3": Stage("res", 6, repeats=3, kernel=3, activation="silu"),
}

OTHER: dict[str, dict[str, object]] = {
    "stem-k1-s2-silu": {"stem": Stem(6, kernel=1, stride=2, activation="silu")},
    "head-none": {"head": Head(0)},
    "head-8-hardswish-dropout": {"head": Head(8, dropout=0.2, activation="hardswish")},
    "eps-1e-3": {"norm_eps": 1e-3},
    "drop-path": {"drop_path": 0.1},
    "s1-res-k5-s2-r2": {"s1": Stage("res", 6, repeats=2, stride=2, kernel=5)},
    "s1-conv-k3-r2": {"s1": Stage("conv", 6, repeats=2, kernel=3)},
    "s2-maxpool-k5": {"s2": Stage("maxpool", 6, kernel=5)},
    "s2-maxpool-k3-s2-r2": {"s2": Stage("maxpool", 6, repeats=2, stride=2, kernel=3)},
    "s2-avgpool-k3-s2": {"s2": Stage("avgpool", 6, stride=2, kernel=3)},
    "s2-avgpool-k5": {"s2": Stage("avgpool", 6, kernel=5)},
    "s2-skip-r2": {"s2": Stage("skip", 6, repeats=2)},
    "s2-zero-s2": {"s2": Stage("zero", 6, stride=2)},
    "s2-ir-e2-k5-s2-r2": {"s2": Stage("ir", 6, repeats=2, stride=2, kernel=5, expansion=2)},
}


def assert_extracts(net: Supernet, arch: Architecture, seed: int = 0) -> None:
    """Strict load into ``build(arch)``, then equal outputs in eval mode (1e-5)."""
    got, state = extract(net, arch)
    assert got == arch
    built = build(arch, seed=None)
    built.load_state_dict(state, strict=True)
    assert {k: v.shape for k, v in state.items()} == {
        k: v.shape for k, v in built.state_dict().items()
    }
    built.eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, arch.in_channels, arch.resolution, arch.resolution, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(built(x), net(x, arch), atol=1e-5, rtol=0)


@pytest.mark.parametrize("stem_channels", [4, 6])
@pytest.mark.parametrize("case", list(STAGE0))
def test_every_op_and_elastic_field(allops_net: Supernet, case: str, stem_channels: int) -> None:
    assert_extracts(allops_net, allops_arch(STAGE0[case], stem=Stem(stem_channels)))


@pytest.mark.parametrize("case", list(OTHER))
def test_stem_head_depth_and_weightless_ops(allops_net: Supernet, case: str) -> None:
    assert_extracts(allops_net, allops_arch(**OTHER[case]))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_random_allops(allops: SearchSpace, allops_net: Supernet, seed: int) -> None:
    assert_extracts(allops_net, sample_random(allops, seed), seed)


@pytest.mark.parametrize("seed", range(8))
def test_random_tiny(tiny: SearchSpace, tiny_net: Supernet, seed: int) -> None:
    # 8 px: the smallest input keeps the test fast; the path is the same at any size.
    assert_extracts(tiny_net, sample_random(tiny, seed).replace(resolution=8), seed)


@pytest.mark.parametrize("seed", range(8))
def test_random_nasbench201(seed: int) -> None:
    """NAS-Bench-201 cells: per-edge single-path weights, dead edges extracted too."""
    assert_extracts(_nb201_net(), sample_random(_NB201, seed), seed)


def test_nasbench201_dead_edges() -> None:
    """Edge 0 (conv 3x3 into node 1) is dead when node 1 feeds nothing: its weights
    exist in the built cell, are extracted, and never run."""
    dead = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    arch = sample_random(_NB201, 0).replace(cell=dead)
    _, state = extract(_nb201_net(), arch)
    assert "stages.0.0.edges.0.1.weight" in state
    assert_extracts(_nb201_net(), arch)


_NB201 = load_space("nasbench201").with_data(in_channels=1, resolution=8)


@functools.cache
def _nb201_net() -> Supernet:
    return perturb(Supernet(_NB201)).eval()


def test_mobile() -> None:
    space = load_space("mobile")
    net = perturb(Supernet(space)).eval()
    assert_extracts(net, sample_random(space, 3).replace(resolution=32))


def test_kernel_transform_is_what_the_path_runs(allops_net: Supernet) -> None:
    """The k3 weight of a k7 family is the transformed one (not the plain centre crop)."""
    arch = allops_arch(Stage("conv", 6, kernel=3, activation=A))
    _, state = extract(allops_net, arch)
    family = allops_net.stages[0]["conv_d1"][0].layer.conv
    crop = family.weight[:6, :4, 2:5, 2:5]
    assert not torch.allclose(state["stages.0.0.conv.weight"], crop)
    assert torch.equal(state["stages.0.0.conv.weight"], family.active_weight(4, 6, 3).detach())


def test_train_mode_outputs_and_statistics_match(allops: SearchSpace) -> None:
    """In training mode too (batch statistics), and the running statistics the path
    updates are those the built network updates."""
    arch = allops_arch(
        Stage("ir", 6, repeats=2, kernel=5, expansion=3, se_ratio=0.25, activation=A)
    )
    net = perturb(Supernet(allops)).train()
    built = extract_network(net, arch)
    assert built.training
    x = torch.randn(4, 2, 8, 8, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(built(x), net(x, arch), atol=1e-5, rtol=0)
    _, after = extract(net, arch)
    for k, v in built.state_dict().items():
        torch.testing.assert_close(v, after[k], atol=1e-6, rtol=0)


def test_extracted_state_is_a_copy(allops_net: Supernet) -> None:
    arch = allops_arch()
    _, state = extract(allops_net, arch)
    state["stem.conv.weight"].zero_()
    assert allops_net.stem.conv.weight.abs().sum() > 0


def test_gradients_reach_only_the_active_slice_and_the_transform(allops: SearchSpace) -> None:
    net = Supernet(allops).train()
    arch = allops_arch(Stage("conv", 4, kernel=3, activation=A), stem=Stem(4))
    net(torch.randn(2, 2, 8, 8), arch).sum().backward()
    conv = net.stages[0]["conv_d1"][0].layer.conv
    assert conv.weight.grad is not None
    assert conv.weight.grad[4:].abs().sum() == 0  # output channels beyond the active 4
    assert conv.weight.grad[:, 4:].abs().sum() == 0  # input channels beyond the stem's 4
    assert conv.weight.grad[:4, :4, 2:5, 2:5].abs().sum() > 0
    assert conv.transform is not None
    assert conv.transform.matrices["5to3"].grad is not None
    assert conv.transform.matrices["5to3"].grad.abs().sum() > 0
    unused = net.stages[0]["ds_d1"][0].dw.conv.weight
    assert unused.grad is None  # another op's family: untouched


def test_seeded_and_reloadable(allops: SearchSpace, tmp_path: Path) -> None:
    """The same seed gives the same weights (a resumed run can rebuild the supernet),
    and the state dict round-trips strictly through a file."""
    a, b = Supernet(allops, seed=0), Supernet(allops, seed=0)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    c = Supernet(allops, seed=1)
    assert not torch.equal(a.stem.conv.weight, c.stem.conv.weight)
    torch.save(a.state_dict(), tmp_path / "supernet.pt")
    c.load_state_dict(torch.load(tmp_path / "supernet.pt", weights_only=True), strict=True)
    arch, x = allops_arch(), torch.randn(2, 2, 8, 8)
    a.eval()
    c.eval()
    with torch.no_grad():
        assert torch.equal(a(x, arch), c(x, c.path(arch)))  # a resolved Path runs alike


@pytest.mark.parametrize("seed", range(3))
def test_a_mixed_op_path_trains_as_its_extracted_network(tiny: SearchSpace, seed: int) -> None:
    """One SGD step through the supernet's path changes the path's weights exactly as the
    same step changes the built network: no gradient is lost, detached or sent to
    another slice, whatever ops the stages mix (the supernet trains channels_last, so
    it does here). Every kernel is its stage's largest, so no transformation stands
    between the supernet's tensors and the built network's."""
    space = tiny.with_data(resolution=8)
    spec = SupernetSpec.from_space(space)
    sampled = sample_random(space, seed)
    stages = tuple(
        dataclasses.replace(s, kernel=max(spec.stages[i][s.op]["kernel"]))
        for i, s in enumerate(sampled.stages)
    )
    arch = sampled.replace(stages=stages)
    assert len({s.op for s in arch.stages}) > 1  # a mix of ops
    net = perturb(Supernet(space, seed=seed)).train().to(memory_format=torch.channels_last)
    built = extract_network(net, arch)
    before = {k: v.clone() for k, v in built.state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 1, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), generator=g)
    for model, run in ((net, lambda: net(x, arch)), (built, lambda: built(x))):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        torch.nn.functional.cross_entropy(run(), y).backward()
        opt.step()
    after = net.state_of(arch)
    for k, v in built.state_dict().items():
        torch.testing.assert_close(after[k], v, atol=1e-5, rtol=0, msg=k)
    moved = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert len(moved) > len(before) // 2  # the step moved the weights and BN statistics
