"""The elastic layers against hand-computed cases."""

from __future__ import annotations

import torch

from nas.supernet import KernelTransform
from nas.supernet.layers import ElasticBatchNorm2d, ElasticConv2d

# w[r][c] = 10 * r + c: every tap names its own position.
W7 = torch.tensor([[10.0 * r + c for c in range(7)] for r in range(7)]).reshape(1, 1, 7, 7)


def test_untrained_transform_is_the_centre_crop() -> None:
    t = KernelTransform((3, 5, 7))
    assert sorted(t.matrices.keys()) == ["5to3", "7to5"]
    assert torch.equal(t(W7, 7), W7)
    assert torch.equal(t(W7, 5), W7[..., 1:6, 1:6])
    assert torch.equal(t(W7, 3), W7[..., 2:5, 2:5])


def test_transform_by_hand() -> None:
    """7 -> 5 through a matrix that reverses the 25 taps (a 180 degree turn of the
    centre), 5 -> 3 through 2 * identity: k5[i][j] = w[5-i][5-j] and
    k3[i][j] = 2 * k5[1+i][1+j] = 2 * w[4-i][4-j]."""
    t = KernelTransform((3, 5, 7))
    with torch.no_grad():
        t.matrices["7to5"].copy_(torch.eye(25).flip(0))
        t.matrices["5to3"].copy_(2 * torch.eye(9))
    k5 = t(W7, 5)[0, 0]
    assert k5[0].tolist() == [55, 54, 53, 52, 51]
    assert k5[4].tolist() == [15, 14, 13, 12, 11]
    assert t(W7, 3)[0, 0].tolist() == [[88, 86, 84], [68, 66, 64], [48, 46, 44]]


def test_transform_mixes_taps_by_hand() -> None:
    """One non-trivial row: the centre tap of k3 becomes the sum of the 9 centre taps
    of the (identity-mapped) k5, i.e. 2 + 3 + 4 = 9 columns of rows 2..4."""
    t = KernelTransform((3, 5))
    m = torch.eye(9)
    m[4] = 1.0  # row 4 (the centre output tap) sums every input tap
    with torch.no_grad():
        t.matrices["5to3"].copy_(m)
    w5 = W7[..., 1:6, 1:6]
    k3 = t(w5, 3)[0, 0]
    expected_centre = sum(10.0 * r + c for r in (2, 3, 4) for c in (2, 3, 4))
    assert k3[1, 1].item() == expected_centre == 297.0
    assert k3[0, 0].item() == w5[0, 0, 1, 1].item() == 22.0


def test_single_kernel_has_no_transform() -> None:
    conv = ElasticConv2d(4, 4, (3,))
    assert conv.transform is None
    assert not [n for n, _ in conv.named_parameters() if "matrices" in n]


def test_depthwise_and_dense_slices() -> None:
    dense = ElasticConv2d(6, 8, (3, 5))
    assert dense.active_weight(4, 5, 5).shape == (5, 4, 5, 5)
    assert torch.equal(dense.active_weight(4, 5, 5), dense.weight[:5, :4])
    dw = ElasticConv2d(8, 8, (3, 5, 7), depthwise=True)
    assert dw.active_weight(5, 5, 3).shape == (5, 1, 3, 3)
    y = dw(torch.randn(2, 5, 6, 6), 5, 3, stride=2, dilation=2)
    assert y.shape == (2, 5, 3, 3)


def test_batchnorm_slice_by_hand() -> None:
    """Training on 2 of 4 channels normalises with batch statistics and moves only the
    first 2 running means: by momentum 0.1 towards the batch mean."""
    bn = ElasticBatchNorm2d(4)
    x = torch.arange(16.0).reshape(2, 2, 2, 2)  # channel 0: 0..3, 8..11; channel 1: 4..7, 12..15
    bn.train()
    bn(x)
    assert torch.allclose(bn.running_mean, torch.tensor([0.55, 0.95, 0.0, 0.0]))
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0, 1.0, 1.0]))
    y = bn(torch.ones(1, 2, 1, 1), eps=0.0)
    assert y.flatten().tolist() == [0.0, -1.0]  # (1 - 1) / 2, (1 - 2) / 1
