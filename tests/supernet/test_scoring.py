"""Scoring with inherited weights against a second implementation: each subnet
extracted as a plain network, its BN re-estimated on the same batches, its accuracy
counted by nas.train.loop.accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace, load_space, sample_random
from nas.supernet import (
    Supernet,
    SupernetRecipe,
    extract_network,
    largest,
    reestimate_bn,
    score_subnets,
    smallest,
    train_supernet,
)
from nas.train.data import Dataset, Split, load_dataset
from nas.train.loop import accuracy


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Supernet, Dataset, SearchSpace]:
    data = load_dataset("digits", seed=0, limit=800)
    space = load_space("tiny").with_data(resolution=8)
    recipe = SupernetRecipe(epochs=1, batch_size=32, random_subnets=1)
    ckpt = Path(tmp_path_factory.mktemp("sn")) / "s.pt"
    return train_supernet(space, data, recipe, checkpoint=ckpt), data, space


def _oracle(net: Supernet, arch: Architecture, data: Dataset, k: int, b: int, m: int) -> float:
    picks = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(7))
    batches = [data.normalise(data.train.x[i], 8) for i in picks[: k * b].split(b)]
    built = extract_network(net, arch)
    reestimate_bn(built, batches)
    return accuracy(built, data, Split(data.val.x[:m], data.val.y[:m]), 8)


def test_scores_equal_the_extracted_networks(
    trained: tuple[Supernet, Dataset, SearchSpace],
) -> None:
    net, data, space = trained
    rng = np.random.default_rng(3)
    archs = [largest(net.spec), smallest(net.spec), *(sample_random(space, rng) for _ in range(2))]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    got = score_subnets(net, archs, data, bn_batches=3, val_subset=100, batch_size=16, seed=7)
    want = [_oracle(net, a, data, 3, 16, 100) for a in archs]
    # One sample may flip between the two where two logits tie to float rounding.
    assert np.allclose(got, want, atol=1 / 100 + 1e-9, rtol=0), (got, want)
    assert got[0] > 0.5  # the largest of a trained supernet: far above chance (0.1)
    for k, v in net.state_dict().items():  # its own statistics restored
        assert torch.equal(v, before[k]), k
    assert not net.training
    again = score_subnets(net, archs, data, bn_batches=3, val_subset=100, batch_size=16, seed=7)
    assert again == got


def test_whole_split_and_bad_input(trained: tuple[Supernet, Dataset, SearchSpace]) -> None:
    net, data, space = trained
    arch = sample_random(space, 0)
    (whole,) = score_subnets(net, [arch], data, bn_batches=1, val_subset=0, batch_size=8, seed=0)
    n = len(data.val)
    assert whole * n == pytest.approx(round(whole * n))  # a count of the whole split
    for kwargs, field in (
        ({"bn_batches": 0}, "bn_batches"),
        ({"batch_size": 1}, "batch_size"),
        ({"val_subset": -1}, "val_subset"),
    ):
        args = {"bn_batches": 1, "val_subset": 10, "batch_size": 8, "seed": 0, **kwargs}
        with pytest.raises(NasError) as err:
            score_subnets(net, [arch], data, **args)  # type: ignore[arg-type]
        assert err.value.field == field
    other = sample_random(load_space("tiny").with_data(resolution=16), 0)
    with pytest.raises(NasError) as err:
        score_subnets(net, [arch, other], data, bn_batches=1, val_subset=10, batch_size=8, seed=0)
    assert err.value.field == "resolution"
