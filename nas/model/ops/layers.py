"""Building blocks shared by the primitives.

Everything in this file needs only ``torch``: the exporter copies these classes and
functions verbatim (``inspect.getsource``) into a standalone ``<name>.py``. Keep them
free of ``nas`` imports and of names defined outside this file.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "ConvBNAct",
    "Head",
    "SqueezeExcite",
    "Zero",
    "drop_path",
    "make_activation",
]

#: Activation names accepted everywhere ("none" is the identity: linear layers).
ACTIVATIONS = ("none", "relu", "relu6", "silu", "hardswish")


def make_activation(name: str) -> nn.Module:
    """The activation module for ``name`` (one of ACTIVATIONS)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "hardswish":
        return nn.Hardswish(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch per sample while training."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class ConvBNAct(nn.Module):
    """Conv (no bias, "same" padding) -> BatchNorm -> activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: str = "relu",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(
            cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(cout, eps=eps)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-excitation: global pool, 1x1 reduce (bias), act, 1x1 expand (bias), sigmoid gate."""

    def __init__(self, channels: int, reduced: int, act: str = "relu") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = make_activation(act)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.mean(x, dim=(2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


class Zero(nn.Module):
    """The zero operation: an all-zero map of ``cout`` channels, subsampled by ``stride``."""

    def __init__(self, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.cout = cout
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[:, :1, :: self.stride, :: self.stride] * 0.0
        return y.expand(-1, self.cout, -1, -1)


class Head(nn.Module):
    """Classifier: optional 1x1 ConvBNAct, global average pool, dropout, linear."""

    def __init__(
        self,
        cin: int,
        channels: int,
        num_classes: int,
        dropout: float = 0.0,
        act: str = "relu",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, channels, 1, act=act, eps=eps) if channels > 0 else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels if channels > 0 else cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.mean(self.conv(x), dim=(2, 3))
        return self.fc(self.dropout(x))
