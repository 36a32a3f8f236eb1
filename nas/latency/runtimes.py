"""Turn a module into a zero-argument callable that runs one inference on a target.

Each runtime prepares the network the way it would be deployed: eager PyTorch (eval,
inference mode, pinned threads), ONNX Runtime (exported graph, one session),
torch.compile, and CUDA (optionally AMP and channels_last).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nas.core.errors import NasError
from nas.core.threads import torch_threads
from nas.latency.target import Target
from nas.model.arch import Architecture
from nas.model.builder import build

__all__ = ["Runner", "check_available", "prepare", "prepare_arch"]

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Runner:
    """One inference per ``call()``, inside ``session()`` (threads, grad mode, autocast)."""

    call: Callable[[], object]
    cuda: bool = False
    session: Callable[[], contextlib.AbstractContextManager[None]] = field(
        default=contextlib.nullcontext
    )
    #: Keeps temporary files (the ONNX graph) alive as long as the runner.
    keep: object = None
    #: Nanoseconds, monotonic: what CPU calls are timed by. Tests of the harness give a
    #: scripted clock, so that its arithmetic is checked on exact figures, not on the
    #: timings of a machine that other work slows.
    clock: Callable[[], int] = time.perf_counter_ns


def check_available(target: Target) -> None:
    """Raise a one-line NasError when the target's runtime or device is not here."""
    if target.device == "cuda" and not torch.cuda.is_available():
        raise NasError(f"target {target.name}: no CUDA device on this machine", field="target")
    if target.runtime == "onnxruntime":
        try:
            importlib.import_module("onnxruntime")
            importlib.import_module("onnx")
        except ImportError:
            raise NasError(
                f"target {target.name} needs onnxruntime and onnx: pip install 'nas[export]'",
                field="target",
            ) from None
    if target.runtime == "torch-compile":
        if not hasattr(torch, "compile"):
            raise NasError(f"target {target.name}: this torch has no torch.compile", field="target")
        if target.device == "cpu" and not (shutil.which("g++") or shutil.which("c++")):
            raise NasError(
                f"target {target.name}: torch.compile on the CPU needs a C++ compiler (g++)",
                field="target",
            )


def _example(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def prepare(
    module: nn.Module, input_shape: tuple[int, ...], target: Target, *, copies: int = 1
) -> Runner:
    """A runner for ``module`` on ``input_shape`` (batch included) and ``target``.

    ``copies`` > 1 prepares that many copies of the module, each with its own weights,
    and the runner's calls go round them: a copy's weights have left the nearest caches by
    the time it runs again, as a layer's have inside a whole network (see
    ``nas.latency.cold``).
    """
    check_available(target)
    if copies < 1:
        raise NasError(f"must be a positive integer, got {copies}", field="copies")
    module = module.eval()
    if target.runtime == "onnxruntime":
        runners = _onnxruntime(module, input_shape, target, copies)
    else:
        modules = [module] + [copy.deepcopy(module) for _ in range(copies - 1)]
        runners = _torch(modules, input_shape, target)
    return _round_robin(runners)


def _round_robin(runners: list[Runner]) -> Runner:
    """One runner whose calls go round ``runners`` (all prepared alike)."""
    if len(runners) == 1:
        return runners[0]
    turn = itertools.cycle([r.call for r in runners]).__next__
    first = runners[0]
    return Runner(
        call=lambda: turn()(),
        cuda=first.cuda,
        session=first.session,
        keep=[r.keep for r in runners],
    )


def _torch(modules: list[nn.Module], input_shape: tuple[int, ...], target: Target) -> list[Runner]:
    """A runner per module, all on one input tensor (inside a network a layer's input has
    just been written: it is in cache whichever copy runs)."""
    device = torch.device(target.device)
    dtype = _TORCH_DTYPES[target.dtype]
    x = _example(input_shape).to(device)
    if not target.amp:
        x = x.to(dtype)
    if target.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    @contextlib.contextmanager
    def session() -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch_threads(target.threads))
            stack.enter_context(torch.inference_mode())
            if target.amp:
                stack.enter_context(torch.autocast(device_type=target.device, dtype=dtype))
            yield

    runners = []
    for module in modules:
        module = module.to(device)
        if not target.amp:
            module = module.to(dtype)
        if target.channels_last:
            module = module.to(memory_format=torch.channels_last)
        fn: Callable[[torch.Tensor], object] = module
        if target.runtime == "torch-compile":
            fn = torch.compile(module)
        runners.append(
            Runner(call=functools.partial(fn, x), cuda=target.device == "cuda", session=session)
        )
    return runners


def _onnxruntime(
    module: nn.Module, input_shape: tuple[int, ...], target: Target, copies: int
) -> list[Runner]:
    """``copies`` sessions of one exported graph (each session holds its own weights)."""
    import onnxruntime as ort

    from nas.model.export import write_onnx_file

    tmp = tempfile.TemporaryDirectory(prefix="nas-latency-")
    path = Path(tmp.name) / "model.onnx"
    # Batch 2 for the trace, so the graph keeps a dynamic batch dimension.
    write_onnx_file(module.float().cpu(), _example((2, *input_shape[1:])), path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = target.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    feed = {"input": _example(input_shape).numpy()}
    runners = []
    for _ in range(copies):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runners.append(Runner(call=functools.partial(session.run, None, feed), keep=tmp))
    return runners


def prepare_arch(arch: Architecture, target: Target) -> Runner:
    """``prepare`` for the network of ``arch`` (seed 0), on one batch at its resolution."""
    shape = (target.batch, arch.in_channels, arch.resolution, arch.resolution)
    return prepare(build(arch), shape, target)
