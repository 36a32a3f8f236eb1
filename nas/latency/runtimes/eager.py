"""Eager PyTorch on the CPU or CUDA (there optionally with AMP and channels_last)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from nas.latency.runtimes.base import Runner, Runtime, TargetSpec
from nas.latency.runtimes.registry import register_runtime

if TYPE_CHECKING:
    from torch import nn


__all__ = ["Eager"]


@register_runtime
class Eager(Runtime):
    name = "torch"
    targets: ClassVar[Mapping[str, str]] = {"cpu": "cpu", "cuda": "cuda"}

    def prepare(
        self, module: nn.Module, input_shape: tuple[int, ...], target: TargetSpec, copies: int
    ) -> list[Runner]:
        from nas.latency.runtimes._torch import torch_runners

        return torch_runners(module, input_shape, target, copies)
