"""Runners on PyTorch modules (eager or compiled): pinned threads, inference mode, the
target's dtype (cast, or CUDA autocast) and memory format."""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator

import torch
from torch import nn

from nas.latency.runtimes.base import Runner, TargetSpec
from nas.model.threads import torch_threads

__all__ = ["example", "torch_runners"]

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def example(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """The input every runtime times on: fixed by ``seed``, whatever the global RNG."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def torch_runners(
    module: nn.Module,
    input_shape: tuple[int, ...],
    target: TargetSpec,
    copies: int,
    wrap: Callable[[nn.Module], Callable[[torch.Tensor], object]] = lambda m: m,
) -> list[Runner]:
    """A runner per copy of ``module`` (the first is the module itself), each calling
    ``wrap(copy)``, all on one input tensor (inside a network a layer's input has just
    been written: it is in cache whichever copy runs)."""
    modules = [module] + [copy.deepcopy(module) for _ in range(copies - 1)]
    device = torch.device(target.device)
    dtype = _TORCH_DTYPES[target.dtype]
    x = example(input_shape).to(device)
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
    for m in modules:
        m = m.to(device)
        if not target.amp:
            m = m.to(dtype)
        if target.channels_last:
            m = m.to(memory_format=torch.channels_last)
        runners.append(
            Runner(
                call=functools.partial(wrap(m), x), cuda=target.device == "cuda", session=session
            )
        )
    return runners
