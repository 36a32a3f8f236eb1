"""The ``[oneshot]`` section of a study file: which supernet a one-shot search uses and
which front members it then trains on their own (how the supernet is trained and its
subnets scored is the ``[supernet]`` recipe's, nas.supernet.recipe).

Torch-free, like the rest of the study file: reading a study must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.errors import NasError

__all__ = ["STRATEGIES", "OneShotConfig"]

#: How a search scores a candidate: "pertrial" trains each one on its own;
#: "oneshot" trains one supernet, then scores each candidate with its inherited weights.
STRATEGIES = ("pertrial", "oneshot")


@dataclass(frozen=True)
class OneShotConfig:
    """A one-shot search (``[search] strategy = "oneshot"``, nas.search.oneshot)."""

    #: A trained supernet checkpoint to use instead of the study's own store ("": train
    #: or reuse the one stored for this space, data and recipe). It must match them.
    checkpoint: str = ""
    #: Front members trained further after the search (best first; 0: keep the
    #: inherited weights as they are).
    top: int = 3
    #: Epochs of that training (the rest of its recipe is ``[train]``'s).
    epochs: int = 2
    #: Train them from scratch instead of from their inherited weights.
    scratch: bool = False

    def __post_init__(self) -> None:
        if self.top < 0:
            raise NasError("must be an integer >= 0 (0: no further training)", field="top")
        if self.epochs < 1:
            raise NasError("must be a positive integer", field="epochs")
