"""Latency runtimes, one per file, found by name through the registry.

Each prepares a network the way it would be deployed: eager PyTorch (eval, inference
mode, pinned threads; CUDA optionally AMP and channels_last), ONNX Runtime (exported
graph, one session) and torch.compile. Importing this package imports no torch: target
parsing and the CLI's help read the declarations, and ``prepare`` and its kin load on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Registration order is the order the CLI's help and the errors list targets in.
# isort: off
from nas.latency.runtimes import eager, ort, torch_compile  # noqa: F401  (registers)

# isort: on
from nas.latency.runtimes.base import DTYPES, Runner, Runtime
from nas.latency.runtimes.registry import RUNTIMES, TARGETS, get_runtime, register_runtime

if TYPE_CHECKING:
    from nas.latency.runtimes.dispatch import check_available, prepare, prepare_arch

__all__ = [
    "DTYPES",
    "RUNTIMES",
    "TARGETS",
    "Runner",
    "Runtime",
    "check_available",
    "get_runtime",
    "prepare",
    "prepare_arch",
    "register_runtime",
]

#: Public names that live in a module importing torch: loaded when first asked for.
_LAZY = frozenset({"check_available", "prepare", "prepare_arch"})


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.dispatch"), name)
