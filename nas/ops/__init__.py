"""Primitives, one per file, found by name through the registry."""

from __future__ import annotations

from nas.ops import (  # noqa: F401  (registers)
    cell,
    conv,
    dilconv,
    dsconv,
    mbconv,
    pool,
    resblock,
    skip,
    zero,
)
from nas.ops.base import OPTIONAL_FIELDS, BlockSpec, Op
from nas.ops.registry import OPS, get_op, register

__all__ = ["OPS", "OPTIONAL_FIELDS", "BlockSpec", "Op", "get_op", "register"]
