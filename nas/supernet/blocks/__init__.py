"""Elastic blocks, one per built module class, found through the registry."""

from __future__ import annotations

from nas.supernet.blocks import cell, conv, ds, ir, res, weightless  # noqa: F401  (registers)
from nas.supernet.blocks.base import ELASTIC, ElasticBlock, Kwargs, elastic_block

__all__ = ["ELASTIC", "ElasticBlock", "Kwargs", "elastic_block"]
