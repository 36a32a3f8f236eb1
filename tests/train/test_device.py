"""Where a trial trains when a scheduler gave it GPUs (nas.train.device.place), and
how much memory it has left there."""

from __future__ import annotations

import logging

import pytest
import torch

from nas.train.device import _malloc_trim, memory_left, place, release_memory, resident_bytes

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_no_gpu_assigned_is_the_configured_device():
    p = place("cpu")
    assert p.device == torch.device("cpu") and p.gpu_ids == () and p.note == ""
    assert place("auto", ()).label == ("cuda:0" if torch.cuda.is_available() else "cpu")


@no_cuda
def test_an_assigned_gpu_without_cuda_trains_on_the_cpu_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="nas.train.device"):
        p = place("auto", [3])
    assert p.device == torch.device("cpu") and p.gpu_ids == ("3",)
    assert p.note == "GPU 3 assigned, but torch sees no CUDA here: trained on the CPU"
    assert p.note in caplog.text
    # "cuda" in the study file: still no crash under a scheduler; the CPU, said so.
    assert place("cuda:1", ["0", "1"]).label == "cpu"


def test_an_explicit_cpu_is_kept_with_a_note():
    p = place("cpu", ["1"])
    assert p.label == "cpu" and p.note == "GPU 1 assigned, train.device is cpu"


@cuda
def test_cuda_assigned_gpu_is_cuda_0_of_the_visible_set():  # pragma: no cover - GPU only
    # Ray makes only the assigned GPUs visible: the first of them is cuda:0, whatever
    # its physical id, and the study file's "cuda:N" means nothing here.
    for name in ("auto", "cuda", "cuda:3"):
        p = place(name, ["5"])
        assert p.device == torch.device("cuda", 0) and p.gpu_ids == ("5",) and p.note == ""


@cuda
def test_cuda_memory_left_is_the_free_memory_within_the_share():  # pragma: no cover
    free, total = torch.cuda.mem_get_info(0)
    left = memory_left(torch.device("cuda", 0))
    assert 0 < left <= total and abs(left - free) < total * 0.05
    assert memory_left(torch.device("cuda", 0), gpu_share=0.25) <= total // 4


def test_memory_left_on_the_cpu_is_the_limit_less_what_the_process_holds():
    held = resident_bytes()
    assert held > 50 * 2**20  # torch is imported: tens of MiB at least
    assert memory_left(torch.device("cpu")) is None  # nothing bounds it
    left = memory_left(torch.device("cpu"), limit=4 * 2**30)
    # The process may grow a little between the two readings.
    assert 4 * 2**30 - held - 2**24 <= left <= 4 * 2**30 - held


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_release_memory_gives_freed_heap_pages_back():
    # 1,600 blocks of 100 KiB: under glibc's mmap threshold (128 KiB at start, and it
    # only grows), so they come from the heap, where free() keeps them. The last block
    # stays alive and pins the top of the heap: only a trim of the free pages inside the
    # heap gives the memory back.
    blocks = [torch.ones(25_600) for _ in range(1_600)]  # 25,600 float32 = 100 KiB
    last = blocks.pop()
    del blocks
    held = resident_bytes()
    release_memory(torch.device("cpu"))
    given_back = held - resident_bytes()
    assert given_back > 100 * 2**20, f"{given_back / 2**20:.0f} MiB of 156 MiB freed"
    assert float(last[0]) == 1.0


def test_after_the_first_release_collections_skip_the_survivors_and_free_new_cycles():
    import gc
    import weakref

    release_memory(torch.device("cpu"))
    # What lived through the first release (imports, runtime, data) is frozen: later
    # collections do not walk it again.
    assert gc.get_freeze_count() > 1_000

    # A trial's garbage is newer than the freeze: a cycle through a module is still freed.
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.me = [self]  # a cycle: reference counting alone never frees it

    gc.disable()  # no automatic collection in between: only release_memory's
    try:
        net = Net()
        gone = weakref.ref(net)
        del net
        assert gone() is not None
        release_memory(torch.device("cpu"))
        assert gone() is None
    finally:
        gc.enable()
