"""Primitives, one per file, found by name through the registry."""

from __future__ import annotations

from nas.model.ops import (  # noqa: F401  (registers)
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
from nas.model.ops.base import OPTIONAL_FIELDS, BlockSpec, Op
from nas.model.ops.registry import OPS, get_op, register

__all__ = ["OPS", "OPTIONAL_FIELDS", "BlockSpec", "Op", "get_op", "register"]
