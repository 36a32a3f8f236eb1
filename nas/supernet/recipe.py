"""How a supernet is trained and its subnets scored: ``SupernetRecipe``, a study's
``[supernet]`` section.

Torch-free on purpose: a study file embeds a recipe, and reading one must not pay for
importing torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from nas.core.errors import NasError
from nas.core.strict import is_int, is_number
from nas.train.config import TrainConfig

__all__ = ["TRAINING_FIELDS", "SupernetRecipe"]

#: The fields that shape the trained weights: the checkpoint's key. The others
#: (scoring, how often to checkpoint) can change without retraining.
TRAINING_FIELDS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "momentum",
    "random_subnets",
    "temperature",
    "seed",
)

#: Bumped when the training procedure changes what a recipe produces.
_PROCEDURE = 1


@dataclass(frozen=True)
class SupernetRecipe:
    """Sandwich-rule training (largest + smallest + ``random_subnets`` per step, in-place
    distillation) with SGD and a cosine schedule, then BN re-estimation and validation
    for scoring. Every field is checked on construction (NasError naming it)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    #: On conv/linear weights only, as in stand-alone training (nas.train.trial).
    weight_decay: float = 5e-4
    #: SGD momentum (Nesterov).
    momentum: float = 0.9
    #: N: random subnets per step besides the largest and the smallest.
    random_subnets: int = 2
    #: Distillation temperature of the students' soft targets.
    temperature: float = 1.0
    seed: int = 0
    #: K: training batches (of ``batch_size``) BatchNorm statistics are re-estimated on
    #: before a subnet is scored.
    bn_batches: int = 8
    #: Validation samples a subnet is scored on (the first ones; 0: the whole split).
    val_subset: int = 1000
    #: Checkpoint every this many steps as well as after every epoch (0: epochs only).
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay", "momentum", "temperature"):
            value = getattr(self, name)
            if not is_number(value):
                raise NasError(f"expected a finite number, got {value!r}", field=name)
            object.__setattr__(self, name, float(value))
        for name, low in (
            ("epochs", 1),
            ("batch_size", 2),  # BatchNorm needs two samples
            ("random_subnets", 0),
            ("bn_batches", 1),
            ("val_subset", 0),
            ("checkpoint_every", 0),
        ):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                raise NasError(f"must be an integer >= {low}, got {value!r}", field=name)
        if self.lr <= 0:
            raise NasError(f"must be > 0, got {self.lr}", field="lr")
        if self.weight_decay < 0:
            raise NasError(f"must be >= 0, got {self.weight_decay}", field="weight_decay")
        if not 0 <= self.momentum < 1:
            raise NasError(f"must be in [0, 1), got {self.momentum}", field="momentum")
        if self.temperature <= 0:
            raise NasError(f"must be > 0, got {self.temperature}", field="temperature")
        if not is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise NasError(f"must be an integer in [0, 2**63), got {self.seed!r}", field="seed")

    def fingerprint(self) -> str:
        """sha256 of the fields that shape the trained weights (``TRAINING_FIELDS``) and
        the procedure's version: equal recipes reuse one stored supernet."""
        body = {name: getattr(self, name) for name in TRAINING_FIELDS}
        body["procedure"] = _PROCEDURE
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, object]:
        """Plain data, for a checkpoint to record the recipe it was trained with."""
        return dataclasses.asdict(self)

    def train_config(self) -> TrainConfig:
        """The stand-alone training this recipe matches (same epochs, batch, rates,
        cosine schedule, seed): its learning-rate schedule is the supernet's, and a
        subnet trained alone with it is the fair comparison."""
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer="sgd",
            lr=self.lr,
            weight_decay=self.weight_decay,
            schedule="cosine",
            seed=self.seed,
        )
