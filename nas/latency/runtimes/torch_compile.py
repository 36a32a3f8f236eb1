"""torch.compile (Inductor) on the CPU or CUDA: the module as a compiled graph."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from nas.core.errors import NasError
from nas.latency.runtimes.base import Runner, Runtime, TargetSpec
from nas.latency.runtimes.registry import register_runtime

if TYPE_CHECKING:
    from torch import nn


__all__ = ["TorchCompile"]


@register_runtime
class TorchCompile(Runtime):
    name = "torch-compile"
    targets: ClassVar[Mapping[str, str]] = {"compile-cpu": "cpu", "compile-cuda": "cuda"}

    def check_available(self, target: TargetSpec) -> None:
        import torch

        if not hasattr(torch, "compile"):
            raise NasError(f"target {target.name}: this torch has no torch.compile", field="target")
        # Inductor writes C++ for the CPU and builds it on first call.
        if target.device == "cpu" and not (shutil.which("g++") or shutil.which("c++")):
            raise NasError(
                f"target {target.name}: torch.compile on the CPU needs a C++ compiler (g++)",
                field="target",
            )

    def prepare(
        self, module: nn.Module, input_shape: tuple[int, ...], target: TargetSpec, copies: int
    ) -> list[Runner]:
        import torch

        from nas.latency.runtimes._torch import torch_runners

        return torch_runners(module, input_shape, target, copies, wrap=torch.compile)
