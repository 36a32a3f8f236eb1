"""BN re-estimation against a hand computation: the cumulative average of the
batches' channel means and (unbiased) variances."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.model.arch import Head, Stage, Stem
from nas.space.searchspace import SearchSpace
from nas.supernet import Supernet, extract, extract_network, reestimate_bn
from tests.supernet.helpers import allops_arch, perturb


def _batches(n: int, shape: tuple[int, ...], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Different offsets per batch: the average must weigh every batch equally.
    return [torch.randn(shape, generator=g) + k for k in range(n)]


def _expected(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in features])
    variances = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in features])
    return means.mean(0), variances.mean(0)


def test_plain_batchnorm_by_hand() -> None:
    bn = nn.BatchNorm2d(3, momentum=0.3)
    batches = _batches(4, (5, 3, 2, 2))
    assert reestimate_bn(nn.Sequential(bn), batches) == 4
    mean, var = _expected(batches)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    assert int(bn.num_batches_tracked) == 4
    assert bn.momentum == 0.3 and bn.training


@pytest.mark.parametrize("on", ["supernet", "extracted"])
def test_stem_statistics_by_hand(allops: SearchSpace, on: str) -> None:
    """The stem's BN after re-estimation, on the supernet path or the extracted net,
    equals the hand average over the batches of its conv's outputs."""
    net = perturb(Supernet(allops)).eval()
    arch = allops_arch(stem=Stem(4, kernel=3, stride=2))
    batches = _batches(3, (4, 2, 8, 8))
    weight = net.stem.conv.weight[:4].detach().clone()  # stem kernels (1, 3): 3 is whole
    mean, var = _expected([F.conv2d(x, weight, stride=2, padding=1) for x in batches])
    if on == "supernet":
        reestimate_bn(net, [(x, None) for x in batches], arch=arch)  # (x, y) pairs too
        bn = net.stem.bn
        got_mean, got_var = bn.running_mean[:4], bn.running_var[:4]
    else:
        built = extract_network(net, arch)
        reestimate_bn(built, batches)
        got_mean, got_var = built.stem.bn.running_mean, built.stem.bn.running_var
    torch.testing.assert_close(got_mean, mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_var, var, atol=1e-5, rtol=1e-5)


def test_supernet_and_extracted_agree_everywhere(allops: SearchSpace) -> None:
    """Re-estimating on the path then extracting gives the statistics of re-estimating
    the extracted network: every BN, deep blocks, SE, residuals with drop_path (which
    re-estimation keeps off, or the two would differ by chance)."""
    net = perturb(Supernet(allops)).eval()
    stage0 = Stage("ir", 6, repeats=3, kernel=5, expansion=3, se_ratio=0.25, activation="relu6")
    arch = allops_arch(
        stage0, head=Head(8, dropout=0.2), drop_path=0.1, s1=Stage("res", 6, repeats=2, stride=2)
    )
    batches = _batches(3, (4, 2, 8, 8), seed=1)
    built = extract_network(net, arch)
    reestimate_bn(built, batches)
    reestimate_bn(net, batches, arch=arch)
    _, state = extract(net, arch)
    for k, v in built.state_dict().items():
        torch.testing.assert_close(state[k], v, atol=1e-5, rtol=1e-5, msg=k)
    assert not net.training and not built.training  # modes restored
    x = batches[0]
    with torch.no_grad():
        torch.testing.assert_close(built(x), net(x, arch), atol=1e-5, rtol=0)


def test_modes_and_momenta_restored(allops: SearchSpace) -> None:
    net = Supernet(allops).train()
    net.stem.bn.momentum = 0.05
    reestimate_bn(net, _batches(1, (2, 2, 8, 8)), arch=allops_arch())
    assert all(m.training for m in net.modules())
    assert net.stem.bn.momentum == 0.05


def test_no_batches_is_an_error_and_changes_nothing() -> None:
    bn = nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.running_mean.fill_(3.0)
    with pytest.raises(ValueError, match="at least one batch"):
        reestimate_bn(bn, [])
    assert bn.running_mean.tolist() == [3.0, 3.0]
