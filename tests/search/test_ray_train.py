"""Data-parallel supernet training on a real local Ray (Ray Train, 2 CPU workers, gloo):
it finishes and leaves a checkpoint that load_supernet accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
import torch

from nas.core.errors import NasError
from nas.search.executors.ray_train import train_supernet_distributed
from nas.space.searchspace import load_space
from nas.supernet import Supernet, SupernetRecipe, load_supernet
from nas.supernet.store import data_fingerprint, read_checkpoint, space_fingerprint
from nas.train.data import load_dataset

RECIPE = SupernetRecipe(epochs=1, batch_size=32, random_subnets=1, checkpoint_every=4)


@pytest.mark.slow  # 51 s under load: a real 2-worker Ray Train run
def test_two_workers_train_a_loadable_supernet(tmp_path: Path) -> None:
    data = load_dataset("digits", seed=0, limit=300)
    space = load_space("tiny").with_data(resolution=8)
    path = tmp_path / "s.pt"
    try:
        net = train_supernet_distributed(
            space, data, RECIPE, checkpoint=path, workers=2, num_cpus=2
        )
    finally:
        ray.shutdown()
    data_fp = data_fingerprint(data)
    state = read_checkpoint(path, space_fingerprint(space), data_fp, RECIPE)
    assert state["done"] and (state["training"]["epoch"], state["training"]["step"]) == (1, 0)
    loaded = load_supernet(path, space, data_fp, RECIPE)
    fresh = Supernet(space, seed=RECIPE.seed).state_dict()
    moved = 0
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k
        moved += int(v.is_floating_point() and not torch.equal(v, fresh[k]))
    assert moved > 0  # trained: weights left their seeded start
    # Finished: a second call loads it without starting Ray.
    again = train_supernet_distributed(space, data, RECIPE, checkpoint=path, workers=2)
    assert not ray.is_initialized()
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in net.state_dict().items())


def test_uneven_split_is_refused_before_ray_starts(tmp_path: Path) -> None:
    data = load_dataset("digits", seed=0, limit=300)
    space = load_space("tiny").with_data(resolution=8)
    with pytest.raises(NasError) as err:
        train_supernet_distributed(space, data, RECIPE, checkpoint=tmp_path / "s.pt", workers=3)
    assert err.value.field == "workers"
    assert not ray.is_initialized() and not (tmp_path / "s.pt").exists()
