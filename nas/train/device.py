"""Where a trial runs and how it is seeded: the torch device and a private RNG scope.

CUDA is only touched when it is asked for, and the caller's global RNG state is restored
after a trial, so evaluating a candidate never perturbs the code around it.

Under a scheduler that hands out GPUs (Ray sets ``CUDA_VISIBLE_DEVICES`` to the ids it
gave the trial), the process sees its GPUs renumbered from 0: ``place`` then trains on
``cuda:0`` of that visible set and keeps the physical ids, so a result says which GPU
trained it. A trial given a GPU on a machine where torch has no CUDA (a cluster that
declares GPUs it lacks, a CPU-only torch build) trains on the CPU and says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.core.errors import NasError

__all__ = [
    "Placement",
    "memory_left",
    "place",
    "release_memory",
    "resident_bytes",
    "resolve_device",
    "seeded",
]

_log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Placement:
    """Where one trial trains, and what the scheduler gave it."""

    device: torch.device
    #: Physical GPU ids the scheduler assigned (``ray.get_gpu_ids()``), as strings; ()
    #: when none was assigned.
    gpu_ids: tuple[str, ...] = ()
    #: Why the device differs from what was assigned ("" when it does not).
    note: str = ""

    @property
    def label(self) -> str:
        """``cuda:0`` or ``cpu``, as a result records it."""
        return str(self.device)


def place(name: str, gpu_ids: Sequence[str | int] = ()) -> Placement:
    """The device for ``cfg.device`` when a scheduler assigned ``gpu_ids`` to the trial.

    No ids: ``resolve_device(name)``. With ids and a device other than "cpu": the first
    GPU of the visible set (``cuda:0``: the scheduler made only its own GPUs visible, so
    "cuda:N" in a study file means nothing here), or the CPU with a note when this torch
    sees no CUDA. "cpu" is kept as asked, with a note that the GPU sits idle.
    """
    ids = tuple(str(i) for i in gpu_ids)
    if not ids:
        return Placement(resolve_device(name))
    given = f"GPU {','.join(ids)}"
    if name == "cpu":
        return Placement(torch.device("cpu"), ids, f"{given} assigned, train.device is cpu")
    if not torch.cuda.is_available():
        note = f"{given} assigned, but torch sees no CUDA here: trained on the CPU"
        _log.warning("%s", note)
        return Placement(torch.device("cpu"), ids, note)
    return Placement(torch.device("cuda", 0), ids)


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


def resident_bytes() -> int:
    """This process's resident memory (VmRSS; 0 where /proc is not there)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def memory_left(device: torch.device, *, limit: int = 0, gpu_share: float = 1.0) -> int | None:
    """Bytes a trial may still take on ``device``; None when nothing bounds it.

    On a GPU: what is free there, and no more than ``gpu_share`` of the whole card (a
    trial given half a GPU leaves the other half to its neighbour). On the CPU: ``limit``
    (the memory the scheduler gave the trial, 0: none) less what this process already
    holds (interpreter, torch, Ray, the data).
    """
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return min(free, int(total * gpu_share)) if gpu_share < 1 else free
    if limit > 0:
        return limit - resident_bytes()
    return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere: musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


@functools.cache
def _freeze_survivors() -> None:
    """Once per process, after its first full collection: leave what survived it (the
    imports, torch's and Ray's runtime, the data) out of every later collection.

    A full collection walks every object the process holds (hundreds of thousands in a
    trial worker), which took as long as a short training itself (benchmarks/
    trial_release.py); a trial's own objects are all newer, so later collections still
    free them. What is frozen is the process's long-lived state: a cycle in it that
    became garbage later would stay (reference counting still frees the rest).
    """
    gc.freeze()


def release_memory(device: torch.device) -> None:
    """Give back what a finished trial freed: Python's cycles, CUDA's cached blocks and
    glibc's free heap pages.

    glibc keeps freed memory in its arenas; a reused Ray worker runs each trial in a new
    thread, and without the trim its resident memory grew by hundreds of MiB per trial
    (benchmarks/trial_memory.py). The trim is cheap next to a training.
    """
    gc.collect()
    _freeze_survivors()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
