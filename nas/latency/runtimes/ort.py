"""ONNX Runtime on the CPU: the module exported to an ONNX graph, one session per copy,
sequential execution with all graph optimisations, float32 only."""

from __future__ import annotations

import functools
import importlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from nas.core.errors import NasError
from nas.latency.runtimes.base import Runner, Runtime, TargetSpec
from nas.latency.runtimes.registry import register_runtime

if TYPE_CHECKING:
    from torch import nn


__all__ = ["OnnxRuntime"]


@register_runtime
class OnnxRuntime(Runtime):
    name = "onnxruntime"
    targets: ClassVar[Mapping[str, str]] = {"onnxruntime-cpu": "cpu"}
    dtypes = ("float32",)
    package = "onnxruntime"

    def check_available(self, target: TargetSpec) -> None:
        try:
            importlib.import_module("onnxruntime")
            importlib.import_module("onnx")
        except ImportError:
            raise NasError(
                f"target {target.name} needs onnxruntime and onnx: pip install 'nas[export]'",
                field="target",
            ) from None

    def prepare(
        self, module: nn.Module, input_shape: tuple[int, ...], target: TargetSpec, copies: int
    ) -> list[Runner]:
        """``copies`` sessions of one exported graph (each session holds its own weights)."""
        import onnxruntime as ort

        from nas.latency.runtimes._torch import example
        from nas.model.export import write_onnx_file

        tmp = tempfile.TemporaryDirectory(prefix="nas-latency-")
        path = Path(tmp.name) / "model.onnx"
        # Batch 2 for the trace, so the graph keeps a dynamic batch dimension.
        write_onnx_file(module.float().cpu(), example((2, *input_shape[1:])), path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = target.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        feed = {"input": example(input_shape).numpy()}
        runners = []
        for _ in range(copies):
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            runners.append(Runner(call=functools.partial(session.run, None, feed), keep=tmp))
        return runners
