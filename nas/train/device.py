"""Where a trial runs and how it is seeded: the torch device and a private RNG scope.

CUDA is only touched when it is asked for, and the caller's global RNG state is restored
after a trial, so evaluating a candidate never perturbs the code around it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from nas.core.errors import NasError

__all__ = ["resolve_device", "seeded"]


def resolve_device(name: str) -> torch.device:
    """The torch device for ``cfg.device``; CUDA is only queried when it is asked for."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        raise NasError(f"{name!r} asked for, but there is no CUDA device here", field="device")
    device = torch.device(name)
    index = device.index if device.index is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise NasError(f"{name!r}: this machine has {count} CUDA device(s)", field="device")
    return torch.device("cuda", index)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (dropout, drop-path, init) and restore the caller's after.

    On the CPU only the CPU generator is forked and seeded: CUDA is never touched.
    """
    devices = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
