"""The in-memory dataset: uint8 splits and the train-split statistics to normalise them.

Images stay uint8 (a quarter of float32's memory, cheap to ship to Ray workers) and are
normalised per batch by ``Dataset.normalise``, with mean/std measured on the train split
only so that nothing about val/test leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["Dataset", "Split"]


@dataclass(frozen=True, eq=False)
class Split:
    """One split. ``indices`` are positions in the dataset's pool (file order), kept so
    that splits can be checked for overlap and traced back to the source files.

    ``eq=False``: comparing tensors with ``==`` is elementwise, not a bool.
    """

    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)
    indices: torch.Tensor | None = None  # int64 (N,), position in the pool

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise TypeError(
                f"Split.x must be uint8 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise TypeError(
                f"Split.y must be int64 ({self.x.shape[0]},), got {self.y.dtype} {tuple(self.y.shape)}"
            )
        if self.indices is not None and self.indices.shape != self.y.shape:
            raise TypeError("Split.indices must have one entry per sample")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Three splits plus what a model needs to know: classes, channels, native size, and
    the train-split statistics used by :meth:`normalise`."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    resolution: int  # native H (= W)
    mean: tuple[float, ...]  # per channel, of train.x / 255
    std: tuple[float, ...]
    _affine: dict[Any, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def normalise(self, x_uint8: torch.Tensor, resolution: int | None = None) -> torch.Tensor:
        """float32 ``(x/255 - mean)/std``, resized (bilinear, align_corners=False) when
        ``resolution`` differs from the native one.

        Takes uint8 only, so a batch cannot be normalised twice by mistake. Works on the
        tensor's device; the per-channel constants are cached per device.
        """
        if x_uint8.dtype != torch.uint8:
            raise TypeError(f"normalise() takes uint8 images, got {x_uint8.dtype}")
        single = x_uint8.dim() == 3
        x = x_uint8.unsqueeze(0) if single else x_uint8
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected (N, {self.in_channels}, H, W) images, got {tuple(x_uint8.shape)}"
            )
        scale, shift = self._constants(x.device)
        out = torch.addcmul(shift, x.to(torch.float32), scale)  # (x/255 - mean)/std
        if resolution is not None and (resolution != out.shape[-2] or resolution != out.shape[-1]):
            if resolution < 1:
                raise ValueError(f"resolution must be positive, got {resolution}")
            out = F.interpolate(
                out, size=(resolution, resolution), mode="bilinear", align_corners=False
            )
        return out.squeeze(0) if single else out

    def __getstate__(self) -> dict[str, Any]:
        # The per-device cache may hold CUDA tensors: never ship it to another process.
        return {**self.__dict__, "_affine": {}}

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._affine:
            mean = torch.tensor(self.mean, dtype=torch.float64).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float64).view(1, -1, 1, 1)
            scale = (1.0 / (255.0 * std)).to(torch.float32)
            shift = (-mean / std).to(torch.float32)
            self._affine[key] = (scale.to(device), shift.to(device))
        return self._affine[key]
