"""The elastic classifier head, mirroring ``nas.model.ops.layers.Head``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.supernet.blocks import Kwargs
from nas.supernet.layers import ElasticConvBNAct, ElasticLinear

__all__ = ["ElasticHead"]


class ElasticHead(nn.Module):
    """Optional 1x1 conv (elastic width), global average pool, dropout, linear.

    A head with the 1x1 conv and one without keep separate classifiers: one reads
    the head's learned features, the other the last stage's, and the leading columns
    of one are no estimate of the other's.
    """

    def __init__(self, cins: tuple[int, ...], channels: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        widths = [c for c in channels if c > 0]
        self.conv = ElasticConvBNAct(max(cins), max(widths), (1,)) if widths else None
        self.fc = ElasticLinear(max(widths), num_classes) if widths else None
        self.fc_direct = ElasticLinear(max(cins), num_classes) if 0 in channels else None

    def _fc(self, r: Kwargs) -> ElasticLinear:
        fc = self.fc if r["channels"] > 0 else self.fc_direct
        assert fc is not None, "the spec check admits only offered head widths"
        return fc

    def forward(self, x: torch.Tensor, r: Kwargs) -> torch.Tensor:
        if r["channels"] > 0:
            assert self.conv is not None
            x = self.conv(x, r["channels"], 1, 1, 1, r["act"], r["eps"])
        x = torch.mean(x, dim=(2, 3))
        return self._fc(r)(F.dropout(x, r["dropout"], self.training))

    def extract(self, r: Kwargs) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        features = r["cin"]
        if r["channels"] > 0:
            assert self.conv is not None
            conv = self.conv.extract(r["cin"], r["channels"], 1)
            out.update({f"conv.{k}": v for k, v in conv.items()})
            features = r["channels"]
        out.update({f"fc.{k}": v for k, v in self._fc(r).extract(features).items()})
        return out
