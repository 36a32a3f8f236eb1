"""Elastic layers: each holds the widest weights of its kind and runs a leading slice.

Once-for-All's dynamic layers, written for our modules: a conv keeps the largest kernel
and reaches a smaller one through OFA's learned kernel transformation (the centre of
the larger kernel, flattened, times a small matrix per step: 7 -> 5 -> 3); widths are
the leading channels of the widest; BatchNorm normalises the active leading channels
with the matching slice of its statistics. Each layer also hands out its active
weights under the names of the layer it mirrors in ``nas.model.ops.layers``, so an
extracted network gets exactly the tensors the supernet ran.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from nas.model.ops.layers import ACTIVATIONS, make_activation

__all__ = [
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticConvBNAct",
    "ElasticLinear",
    "ElasticSE",
    "KernelTransform",
    "activation",
    "detached",
]

# Activations hold no state, so one instance per name serves every layer.
_ACTS: dict[str, nn.Module] = {name: make_activation(name) for name in ACTIVATIONS}


def activation(name: str) -> nn.Module:
    """The (stateless, shared) activation module for ``name``."""
    return _ACTS[name]


def detached(t: torch.Tensor) -> torch.Tensor:
    """A standalone copy: an extracted network must not alias the supernet's storage."""
    return t.detach().clone().contiguous()


class KernelTransform(nn.Module):
    """OFA's kernel transformation: one ``s*s x s*s`` matrix per step between adjacent
    kernel sizes, shared by every channel of the layer.

    A smaller kernel starts from the largest; each step takes the centre ``s x s`` of the
    current kernel and maps its flattened taps through that step's matrix (initialised
    to the identity, so an untrained transform is a plain centre crop). Learning the
    matrices lets small kernels differ from the large kernel's centre, which OFA found
    better than sharing the centre as it is.
    """

    def __init__(self, kernels: tuple[int, ...]) -> None:
        super().__init__()
        self.kernels = tuple(sorted(set(kernels)))
        self.matrices = nn.ParameterDict(
            {
                f"{big}to{small}": nn.Parameter(torch.eye(small * small))
                for small, big in itertools.pairwise(self.kernels)
            }
        )

    def forward(self, weight: torch.Tensor, kernel: int) -> torch.Tensor:
        """``weight[..., K, K]`` (K the largest kernel) as a ``kernel x kernel`` weight."""
        if kernel not in self.kernels:
            raise ValueError(f"kernel {kernel} is not one of {self.kernels}")
        out = weight
        steps = [k for k in reversed(self.kernels) if k >= kernel]
        for big, small in itertools.pairwise(steps):
            lo = (big - small) // 2
            centre = out[..., lo : lo + small, lo : lo + small]
            flat = centre.reshape(*centre.shape[:-2], small * small)
            out = F.linear(flat, self.matrices[f"{big}to{small}"]).reshape(centre.shape)
        return out


class ElasticConv2d(nn.Conv2d):
    """A bias-free conv over the widest channels and the largest kernel; dense or
    depthwise (``depthwise``: one filter per channel, as in ``groups=channels``).

    It subclasses nn.Conv2d so the builder's weight initialisation treats it as any
    conv; ``forward`` takes the active output width, kernel, stride and dilation.
    """

    def __init__(
        self, cin: int, cout: int, kernels: tuple[int, ...], *, depthwise: bool = False
    ) -> None:
        if depthwise and cin != cout:
            raise ValueError("a depthwise conv keeps its channels")
        big = max(kernels)
        super().__init__(cin, cout, big, groups=cout if depthwise else 1, bias=False)
        self.depthwise = depthwise
        self.transform = KernelTransform(kernels) if len(set(kernels)) > 1 else None

    def active_weight(self, cin: int, cout: int, kernel: int) -> torch.Tensor:
        """The weight a ``cin -> cout``, ``kernel x kernel`` conv runs (``cin`` is ignored
        when depthwise: a depthwise filter has one input channel)."""
        w = self.weight[:cout] if self.depthwise else self.weight[:cout, :cin]
        if kernel == self.kernel_size[0]:
            return w
        if self.transform is None:
            raise ValueError(f"kernel {kernel} is not this layer's {self.kernel_size[0]}")
        return self.transform(w, kernel)

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, cout: int, kernel: int, stride: int = 1, dilation: int = 1
    ) -> torch.Tensor:
        cin = x.shape[1]
        w = self.active_weight(cin, cout, kernel)
        padding = dilation * (kernel - 1) // 2  # ConvBNAct's "same" padding
        groups = cin if self.depthwise else 1
        return F.conv2d(x, w, None, stride, padding, dilation, groups)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the widest channels; a narrower input uses the leading slice of
    the affine pair and of the running statistics (which it updates in place, through
    views, as nn.BatchNorm2d would update whole tensors)."""

    def forward(self, x: torch.Tensor, eps: float | None = None) -> torch.Tensor:  # type: ignore[override]
        c = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            # momentum None: the cumulative average, which BN re-estimation relies on.
            factor = (
                1.0 / float(self.num_batches_tracked)
                if self.momentum is None
                else float(self.momentum)
            )
        mean = self.running_mean[:c] if self.running_mean is not None else None
        var = self.running_var[:c] if self.running_var is not None else None
        return F.batch_norm(
            x,
            mean,
            var,
            self.weight[:c],
            self.bias[:c],
            self.training or mean is None,
            factor,
            self.eps if eps is None else eps,
        )

    def extract(self, c: int) -> dict[str, torch.Tensor]:
        """The state of an nn.BatchNorm2d(c) that normalises as this slice does."""
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        return {
            "weight": detached(self.weight[:c]),
            "bias": detached(self.bias[:c]),
            "running_mean": detached(self.running_mean[:c]),
            "running_var": detached(self.running_var[:c]),
            "num_batches_tracked": detached(self.num_batches_tracked),
        }


class ElasticConvBNAct(nn.Module):
    """Mirrors ``ConvBNAct``: elastic conv -> elastic BN -> activation; the same
    submodule names (``conv``, ``bn``), so its state maps onto ConvBNAct's key for key."""

    def __init__(
        self, cin: int, cout: int, kernels: tuple[int, ...], *, depthwise: bool = False
    ) -> None:
        super().__init__()
        self.conv = ElasticConv2d(cin, cout, kernels, depthwise=depthwise)
        self.bn = ElasticBatchNorm2d(cout)

    def forward(
        self,
        x: torch.Tensor,
        cout: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        act: str = "relu",
        eps: float = 1e-5,
    ) -> torch.Tensor:
        return activation(act)(self.bn(self.conv(x, cout, kernel, stride, dilation), eps))

    def extract(self, cin: int, cout: int, kernel: int) -> dict[str, torch.Tensor]:
        """ConvBNAct's state for this path (the kernel transformed, as the path runs it)."""
        with torch.no_grad():
            out = {"conv.weight": detached(self.conv.active_weight(cin, cout, kernel))}
        out.update({f"bn.{k}": v for k, v in self.bn.extract(cout).items()})
        return out


class ElasticSE(nn.Module):
    """Mirrors ``SqueezeExcite``: the reduce conv's leading ``reduced`` filters over the
    active channels, the expand conv's leading rows; so the squeeze width follows the
    active width (EfficientNet's ``se_channels`` rule decides ``reduced``)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor, reduced: int, act: str) -> torch.Tensor:
        c = x.shape[1]
        s = torch.mean(x, dim=(2, 3), keepdim=True)
        s = F.conv2d(s, self.reduce.weight[:reduced, :c], self.reduce.bias[:reduced])
        s = activation(act)(s)
        s = F.conv2d(s, self.expand.weight[:c, :reduced], self.expand.bias[:c])
        return x * torch.sigmoid(s)

    def extract(self, c: int, reduced: int) -> dict[str, torch.Tensor]:
        return {
            "reduce.weight": detached(self.reduce.weight[:reduced, :c]),
            "reduce.bias": detached(self.reduce.bias[:reduced]),
            "expand.weight": detached(self.expand.weight[:c, :reduced]),
            "expand.bias": detached(self.expand.bias[:c]),
        }


class ElasticLinear(nn.Linear):
    """A classifier over the widest features; a narrower input uses the leading columns."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)

    def extract(self, cin: int) -> dict[str, torch.Tensor]:
        return {"weight": detached(self.weight[:, :cin]), "bias": detached(self.bias)}
