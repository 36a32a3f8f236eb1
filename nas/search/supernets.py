"""A study's supernet: trained once per (space, data, recipe) under the study's export
folder, and reused when the same study asks again.

The study says everything: its data and the space bound to them (as a search trains
on), the recipe (its ``[supernet]`` section), the device (``train.device``) and, for
data-parallel training, where Ray runs (``search.ray_address``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import NasError
from nas.search.config import StudyConfig
from nas.search.setup import supernet_root, training_data
from nas.space.searchspace import SearchSpace
from nas.supernet.store import (
    checkpoint_path,
    data_fingerprint,
    read_checkpoint,
    space_fingerprint,
)
from nas.supernet.supernet import Supernet
from nas.supernet.training import Progress, train_supernet
from nas.train.dataset import Dataset
from nas.train.device import resolve_device

__all__ = ["StudySupernet", "study_supernet"]


@dataclass(frozen=True)
class StudySupernet:
    """A study's trained supernet, where it is stored, and what it was trained on."""

    supernet: Supernet
    checkpoint: Path
    space: SearchSpace
    data: Dataset
    #: True when a finished checkpoint was loaded instead of trained.
    reused: bool


def study_supernet(
    study: StudyConfig,
    *,
    workers: int = 1,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
) -> StudySupernet:
    """Train the study's supernet, or load it when its checkpoint is finished (resume it
    when not). ``checkpoint``: use this file instead of the study's own; ``workers`` > 1
    trains data-parallel on Ray Train (no per-step ``progress`` then). A NasError
    names bad input before any training: data, space, recipe, or a checkpoint of
    another space, data or recipe."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise NasError(f"must be a positive integer, got {workers!r}", field="workers")
    data, space = training_data(study)
    recipe = study.supernet
    space_fp, data_fp = space_fingerprint(space), data_fingerprint(data)
    path = checkpoint or checkpoint_path(supernet_root(study), space_fp, data_fp, recipe)
    reused = path.exists() and bool(read_checkpoint(path, space_fp, data_fp, recipe)["done"])
    device = resolve_device(study.train.device)
    if workers > 1 and not reused:
        from nas.search.executors.ray_train import train_supernet_distributed

        net = train_supernet_distributed(
            space,
            data,
            recipe,
            checkpoint=path,
            workers=workers,
            use_gpu=device.type == "cuda",
            search=study.search,
        )
    else:
        net = train_supernet(space, data, recipe, checkpoint=path, device=device, progress=progress)
    return StudySupernet(net, path, space, data, reused)
