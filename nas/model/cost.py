"""Analytic cost of an Architecture, computed from its description without building it.

Conventions (those of the MobileNet/EfficientNet papers and of torch's FlopCounterMode):
- MACs count the multiply-accumulates of convolutions and linear layers (bias adds,
  BatchNorm, activations, pooling, SE gating and residual adds are not counted);
  FLOPs = 2 * MACs.
- Parameters are trainable tensors: conv and linear weights and biases, BN's affine pair
  (running statistics are buffers, not parameters).
- Peak activation memory is for batch 1 at inference: at each layer the live tensors
  are its input and output, plus the block input when the block ends in a residual add.
- Training activations are what autograd keeps for the backward pass, per sample: the
  input, and each layer's output once, twice after a BatchNorm (the convolution's
  output for BN's backward and BN's output, which the in-place activation and the next
  layer keep), three times after a max pooling (its int64 indices); a zero or unused
  layer keeps nothing. Checked against the tensors torch saves (tests/model).
- Receptive field follows the convolution/pooling path: ``1 + sum_l (k_l - 1) * prod_{j<l} s_j``
  with a dilated kernel acting as ``d * (k - 1) + 1``; the global context of SE and the
  final global pooling is left out (otherwise every unit would see the whole image).
- A NAS-Bench-201 cell (``nas.model.ops.cell``) is walked as the chain of its edges: its
  parameters and MACs are exact (a dead edge's conv is a ``DeadLayer``: parameters, no
  MACs), its receptive field (every edge's kernel added up) and live activations (a
  layer's input and output only) are approximations.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.model.arch import Architecture
from nas.model.ops import BlockSpec, get_op
from nas.model.ops.base import (
    ConvLayer,
    DeadLayer,
    Layer,
    LinearLayer,
    PoolLayer,
    SELayer,
    ZeroLayer,
)

__all__ = [
    "Cost",
    "LayerCost",
    "block_output_shape",
    "conv_output_size",
    "cost",
    "head_layers",
    "layer_macs",
    "layer_output_shape",
    "layer_params",
]

Shape = tuple[int, int, int]  # channels, height, width


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """``floor((H + 2p - k_eff) / s) + 1`` with ``k_eff = d * (k - 1) + 1``."""
    k_eff = dilation * (kernel - 1) + 1
    return (size + 2 * padding - k_eff) // stride + 1


def layer_params(layer: Layer) -> int:
    match layer:
        case ConvLayer(cin=cin, cout=cout, kernel=k, groups=g, bias=bias, norm=norm):
            return cout * (cin // g) * k * k + (cout if bias else 0) + (2 * cout if norm else 0)
        case SELayer(channels=c, reduced=r):
            return (c * r + r) + (r * c + c)
        case LinearLayer(cin=cin, cout=cout):
            return cin * cout + cout
        case DeadLayer(layer=inner):
            return layer_params(inner)
        case _:
            return 0


def layer_macs(layer: Layer, out: Shape) -> int:
    match layer:
        case ConvLayer(cin=cin, cout=cout, kernel=k, groups=g):
            return cout * (cin // g) * k * k * out[1] * out[2]
        case SELayer(channels=c, reduced=r):
            return 2 * c * r
        case LinearLayer(cin=cin, cout=cout):
            return cin * cout
        case _:
            return 0


def layer_output_shape(layer: Layer, shape: Shape) -> Shape:
    c, h, w = shape
    match layer:
        case ConvLayer(cout=cout, kernel=k, stride=s, dilation=d, padding=p):
            return cout, conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)
        case PoolLayer(kernel=k, stride=s, padding=p):
            return c, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
        case ZeroLayer(cout=cout, stride=s):
            return cout, conv_output_size(h, 1, s), conv_output_size(w, 1, s)
        case SELayer() | DeadLayer():
            return shape
        case LinearLayer(cout=cout):
            return cout, 1, 1
    raise TypeError(f"unknown layer {layer!r}")  # pragma: no cover


def block_output_shape(block: BlockSpec, shape: Shape) -> Shape:
    """Shape after one block: its layers' shape rules applied in order."""
    for layer in get_op(block.op).layers(block):
        shape = layer_output_shape(layer, shape)
    return shape


def _spatial(layer: Layer) -> tuple[int, int]:
    """(effective kernel, stride) along the convolution path."""
    match layer:
        case ConvLayer(kernel=k, stride=s, dilation=d):
            return d * (k - 1) + 1, s
        case PoolLayer(kernel=k, stride=s):
            return k, s
        case ZeroLayer(stride=s):
            return 1, s
    return 1, 1


def describe(layer: Layer) -> str:
    match layer:
        case ConvLayer(cin=cin, cout=cout, kernel=k, stride=s, dilation=d, groups=g):
            kind = "dwconv" if g > 1 and g == cin == cout else "conv"
            text = f"{kind} {k}x{k}"
            return text + (f" d{d}" if d > 1 else "") + (f" /{s}" if s > 1 else "")
        case PoolLayer(kind=kind, kernel=k, stride=s):
            return f"{kind}pool {k}x{k}" + (f" /{s}" if s > 1 else "")
        case SELayer(channels=c, reduced=r):
            return f"se {c}->{r}->{c}"
        case ZeroLayer(stride=s):
            return "zero" + (f" /{s}" if s > 1 else "")
        case LinearLayer():
            return "linear"
        case DeadLayer(layer=inner):
            return f"unused {describe(inner)}"
    raise TypeError(f"unknown layer {layer!r}")  # pragma: no cover


@dataclass(frozen=True)
class LayerCost:
    """One row of the layer table."""

    name: str  # "stem", "stages.2.1", "head"
    layer: str  # human description, e.g. "dwconv 5x5 /2"
    in_shape: Shape
    out_shape: Shape
    params: int
    macs: int
    live_elements: int  # activations alive while this layer runs (batch 1)
    receptive_field: int  # after this layer
    saved_elements: int = 0  # kept for the backward pass while training (per sample)


@dataclass(frozen=True)
class Cost:
    """Totals and the per-layer table of one architecture."""

    layers: tuple[LayerCost, ...]
    params: int
    macs: int
    peak_activation_elements: int
    receptive_field: int
    output_shape: Shape
    #: Activations autograd keeps for one sample's backward pass, the input included.
    training_activation_elements: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def peak_activation_bytes(self, bytes_per_element: int = 4) -> int:
        return self.peak_activation_elements * bytes_per_element

    def training_activation_bytes(self, batch: int, bytes_per_element: int = 4) -> int:
        """What the forward pass of a training step keeps for its backward pass."""
        return batch * self.training_activation_elements * bytes_per_element


def _numel(shape: Shape) -> int:
    return shape[0] * shape[1] * shape[2]


def _saved(layer: Layer, out: Shape) -> int:
    """Elements of ``layer``'s output that training keeps for the backward pass."""
    match layer:
        case ConvLayer(norm=True):
            return 2 * _numel(out)
        case PoolLayer(kind="max"):
            return 3 * _numel(out)
        case ZeroLayer() | DeadLayer():
            return 0
    return _numel(out)


class _Walker:
    """Follows shapes, receptive field and live memory through the layers in order."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.rf = 1
        self.jump = 1
        self.rows: list[LayerCost] = []

    def run(self, name: str, layers: tuple[Layer, ...], *, residual: bool = False) -> None:
        block_in = _numel(self.shape)
        if not layers:  # identity block: the input passes through
            self.rows.append(
                LayerCost(name, "identity", self.shape, self.shape, 0, 0, block_in, self.rf)
            )
            return
        for k, layer in enumerate(layers):
            out = layer_output_shape(layer, self.shape)
            live = _numel(self.shape) + _numel(out) + (block_in if residual and k > 0 else 0)
            k_eff, stride = _spatial(layer)
            self.rf += (k_eff - 1) * self.jump
            self.jump *= stride
            row = LayerCost(
                name,
                describe(layer),
                self.shape,
                out,
                layer_params(layer),
                layer_macs(layer, out),
                live,
                self.rf,
                _saved(layer, out),
            )
            self.rows.append(row)
            self.shape = out


def head_layers(
    in_channels: int, channels: int, num_classes: int
) -> tuple[tuple[ConvLayer, ...], LinearLayer]:
    """The head's layers: a 1x1 conv when it has ``channels`` (before the global average
    pooling), then the linear classifier after it."""
    convs = (ConvLayer(in_channels, channels, 1),) if channels > 0 else ()
    return convs, LinearLayer(channels or in_channels, num_classes)


def cost(arch: Architecture) -> Cost:
    """Parameters, MACs, peak activations, shapes and receptive field of ``arch``."""
    walk = _Walker((arch.in_channels, arch.resolution, arch.resolution))
    stem = arch.stem
    walk.run("stem", (ConvLayer(arch.in_channels, stem.channels, stem.kernel, stem.stride),))
    for i, j, block in arch.blocks():
        op = get_op(block.op)
        walk.run(f"stages.{i}.{j}", op.layers(block), residual=op.residual(block))
    rf = walk.rf
    convs, classifier = head_layers(arch.out_channels, arch.head.channels, arch.num_classes)
    walk.run("head", convs)
    if not convs:  # drop the identity row run() added for an empty head conv
        walk.rows.pop()
    walk.shape = (classifier.cin, 1, 1)  # global average pooling
    walk.run("head", (classifier,))
    rows = tuple(walk.rows)
    return Cost(
        layers=rows,
        params=sum(r.params for r in rows),
        macs=sum(r.macs for r in rows),
        peak_activation_elements=max(r.live_elements for r in rows),
        receptive_field=rf,
        output_shape=walk.shape,
        training_activation_elements=_numel(rows[0].in_shape) + sum(r.saved_elements for r in rows),
    )
