"""The reference architectures, built by our builder, match torchvision's exactly."""

from __future__ import annotations

import pytest
import torch

from nas.model.builder import build


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("mobilenet_v2", 3_504_872), ("efficientnet_b0", 5_288_548)],
)
def test_parameter_count_equals_torchvision(request, fixture, expected):
    arch = request.getfixturevalue(fixture)
    assert n_params(build(arch)) == expected


def test_reference_forward_shape(mobilenet_v2):
    model = build(mobilenet_v2.replace(resolution=64)).eval()
    with torch.inference_mode():
        y = model(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 1000)
