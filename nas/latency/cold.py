"""Units timed with their weights out of every cache, as they are inside a network.

Timed alone in a loop, a unit's weights stay in the core's caches; inside a network of
many MB (a ``mobile`` network at 64 px holds 13-25 MB) each layer's weights have been
pushed out by the others' by the time it runs again, and on a shared machine the
last-level cache is also taken by neighbours. So every unit of a CPU table is timed
twice: hot (one module, again and again) and cold (calls go round copies of it holding
more weights than the last-level cache), and the calibration weighs the two sums per
space: cold figures are what predict networks of many MB (``mobile``), while ``tiny``
(weights of KBs: hot inside its networks) keeps to its hot ones (benchmarks/README.md,
"Cold units: weights out of cache").
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["cold_bytes", "cold_copies", "cold_key", "last_level_cache"]

#: What a cold unit's copies hold when the last-level cache's size cannot be read.
DEFAULT_BYTES = 48 << 20
#: Copies are capped: a unit of a few KB stays cheap to prepare.
MAX_COPIES = 64


@functools.cache
def last_level_cache() -> int:
    """Bytes of this CPU's largest cache (Linux sysfs); 0 when it cannot be read."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=0)


def cold_bytes(runtime: str, device: str) -> int:
    """The weights a cold unit's copies hold: 1.5x the last-level cache, so a copy's
    weights come from memory. 0 (no cold figures) on CUDA, where a whole network's weights
    stay on the device, and for runtimes other than eager PyTorch: on onnxruntime (a
    session per copy) cold figures were noisy and predicted worse than hot ones
    (benchmarks/README.md), and torch.compile is not measured yet."""
    if (runtime, device) != ("torch", "cpu"):
        return 0
    llc = last_level_cache()
    return llc * 3 // 2 if llc else DEFAULT_BYTES


def cold_copies(module: nn.Module, budget: int) -> int:
    """How many copies of ``module`` hold ``budget`` bytes of weights (2 to MAX_COPIES)."""
    size = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    return min(MAX_COPIES, max(2, -(-budget // max(1, size))))


def cold_key(key: str) -> str:
    """The table key of a unit's cold figure."""
    return key + "|cold"
