"""Supernet training: the recipe's checks and fingerprint, checkpoints keyed by space,
data and recipe, resuming to the same weights, refusing a checkpoint of another kind."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from nas.core.errors import NasError
from nas.space.searchspace import SearchSpace, load_space
from nas.supernet import Supernet, SupernetRecipe, checkpoint_path, load_supernet, train_supernet
from nas.supernet.store import data_fingerprint, read_checkpoint, space_fingerprint
from nas.train.data import Dataset, load_dataset

#: Small enough for seconds: 8 px digits, 20 steps an epoch, a checkpoint every 7.
RECIPE = SupernetRecipe(epochs=2, batch_size=24, lr=0.05, random_subnets=1, checkpoint_every=7)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, limit=600)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return load_space("tiny").with_data(resolution=8)


@pytest.fixture(scope="module")
def whole(
    space: SearchSpace, digits: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Supernet:
    """RECIPE trained without interruption (the resumed runs' oracle)."""
    path = tmp_path_factory.mktemp("whole") / "whole.pt"
    return train_supernet(space, digits, RECIPE, checkpoint=path)


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 1),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("weight_decay", -1e-4),
        ("momentum", 1.0),
        ("random_subnets", -1),
        ("temperature", 0.0),
        ("seed", -1),
        ("bn_batches", 0),
        ("val_subset", -5),
        ("checkpoint_every", 1.5),
        ("epochs", True),
    ],
)
def test_recipe_names_the_bad_field(field: str, value: object) -> None:
    with pytest.raises(NasError) as err:
        SupernetRecipe(**{field: value})  # type: ignore[arg-type]
    assert err.value.field == field
    assert "\n" not in str(err.value)


def test_fingerprint_covers_exactly_the_training_fields() -> None:
    r = SupernetRecipe()
    body = {
        "batch_size": 64,
        "epochs": 10,
        "lr": 0.05,
        "momentum": 0.9,
        "procedure": 1,
        "random_subnets": 2,
        "seed": 0,
        "temperature": 1.0,
        "weight_decay": 5e-4,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert r.fingerprint() == hashlib.sha256(text.encode()).hexdigest()
    assert SupernetRecipe(bn_batches=3, val_subset=7, checkpoint_every=0).fingerprint() == (
        r.fingerprint()
    )
    assert SupernetRecipe(lr=0.1).fingerprint() != r.fingerprint()
    assert SupernetRecipe(lr=1).fingerprint() == SupernetRecipe(lr=1.0).fingerprint()


def test_train_store_and_reuse(space: SearchSpace, digits: Dataset, tmp_path: Path) -> None:
    data_fp = data_fingerprint(digits)
    path = checkpoint_path(tmp_path, space_fingerprint(space), data_fp, RECIPE)
    assert path.parent == tmp_path and RECIPE.fingerprint()[:12] in path.name
    seen: list[tuple[int, int]] = []
    net = train_supernet(
        space, digits, RECIPE, checkpoint=path, progress=lambda d, t: seen.append((d, t))
    )
    total = 2 * (len(digits.train) // 24)
    assert seen == [(k, total) for k in range(1, total + 1)]
    assert not net.training
    loaded = load_supernet(path, space, data_fp, RECIPE)
    _equal_states(net.state_dict(), loaded.state_dict())
    before = path.read_bytes()
    again: list[tuple[int, int]] = []
    reused = train_supernet(
        space, digits, RECIPE, checkpoint=path, progress=lambda d, t: again.append((d, t))
    )
    assert again == []  # nothing trained: the stored one is reused
    assert path.read_bytes() == before
    _equal_states(net.state_dict(), reused.state_dict())


class _Stop(Exception):
    pass


def test_resume_reaches_the_uninterrupted_weights(
    space: SearchSpace, digits: Dataset, whole: Supernet, tmp_path: Path
) -> None:
    """Stopped mid-epoch after a step checkpoint (steps 7 and 14 of 20 saved; stopped at
    17), then resumed from step 14: the weights equal those of one run throughout."""
    path = tmp_path / "cut.pt"

    def stop_at(done: int, _total: int) -> None:
        if done == 17:
            raise _Stop

    with pytest.raises(_Stop):
        train_supernet(space, digits, RECIPE, checkpoint=path, progress=stop_at)
    state = read_checkpoint(path, space_fingerprint(space), data_fingerprint(digits), RECIPE)
    assert not state["done"] and (state["training"]["epoch"], state["training"]["step"]) == (0, 14)
    with pytest.raises(NasError, match="resumes") as err:
        load_supernet(path, space, data_fingerprint(digits), RECIPE)
    assert err.value.field == "checkpoint" and err.value.source == str(path)
    resumed = train_supernet(space, digits, RECIPE, checkpoint=path)
    _equal_states(whole.state_dict(), resumed.state_dict())


def test_a_checkpoint_of_another_kind_is_refused(
    space: SearchSpace, digits: Dataset, tmp_path: Path
) -> None:
    recipe = SupernetRecipe(epochs=1, batch_size=100, random_subnets=0)
    path = tmp_path / "s.pt"
    train_supernet(space, digits, recipe, checkpoint=path)
    data_fp = data_fingerprint(digits)
    before = path.read_bytes()
    other_space = load_space("tiny").with_data(resolution=16)
    other_data = load_dataset("digits", seed=1, limit=600)
    cases = [
        (lambda: load_supernet(path, other_space, data_fp, recipe), "space"),
        (lambda: load_supernet(path, space, "0" * 64, recipe), "data"),
        (lambda: load_supernet(path, space, data_fp, SupernetRecipe(epochs=2)), "recipe.epochs"),
        (lambda: train_supernet(other_space, digits, recipe, checkpoint=path), "space"),
        (lambda: train_supernet(space, other_data, recipe, checkpoint=path), "data"),
        (
            lambda: train_supernet(space, digits, SupernetRecipe(seed=3), checkpoint=path),
            "recipe.epochs",
        ),
    ]
    for call, field in cases:
        with pytest.raises(NasError) as err:
            call()
        assert (err.value.field, err.value.source) == (field, str(path))
        assert "\n" not in str(err.value)
    assert path.read_bytes() == before  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pt"]


def test_not_a_checkpoint(space: SearchSpace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_text("not torch")
    for path, reason in ((bad, "not a supernet checkpoint"), (tmp_path / "none.pt", "no such")):
        with pytest.raises(NasError, match=reason) as err:
            load_supernet(path, space, "x", RECIPE)
        assert err.value.field == "checkpoint" and err.value.source == str(path)


def test_data_that_do_not_fit(space: SearchSpace, tmp_path: Path) -> None:
    three = load_space("tiny").with_data(resolution=8, num_classes=3)
    with pytest.raises(NasError) as err:
        train_supernet(three, load_dataset("digits", limit=300), RECIPE, checkpoint=tmp_path / "x")
    assert err.value.field == "num_classes"
    assert not (tmp_path / "x").exists()


#: The child trains RECIPE, says so once step 8 is done (a checkpoint of step 7 is on
#: disk), then blocks on stdin until it is killed: the kill always lands mid-run.
CHILD = f"""
import sys
import torch
from pathlib import Path
from nas.space.searchspace import load_space
from nas.supernet import Supernet, SupernetRecipe, train_supernet
from nas.train.data import load_dataset

torch.set_num_threads(1)

def progress(done, total):
    if done == 8:
        print("step 8", flush=True)
        sys.stdin.readline()

recipe = {RECIPE!r}
data = load_dataset("digits", seed=0, limit=600)
space = load_space("tiny").with_data(resolution=8)
train_supernet(space, data, recipe, checkpoint=Path(sys.argv[1]), progress=progress)
"""


def test_killed_process_resumes_to_the_same_weights(
    space: SearchSpace, digits: Dataset, whole: Supernet, tmp_path: Path
) -> None:
    """A real process SIGKILLed after its step-7 checkpoint, resumed here: the weights
    equal an uninterrupted run's exactly (the CPU, one thread in both)."""
    path = tmp_path / "killed.pt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    # A stuck child must not hang the suite: 8 steps and the imports take about 10 s on
    # a busy machine; 120 s is a wide margin.
    watchdog = threading.Timer(120, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "step 8\n"  # blocks until the child says so
        assert path.exists()
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        child.kill()
        child.wait()
    state = read_checkpoint(path, space_fingerprint(space), data_fingerprint(digits), RECIPE)
    assert not state["done"] and (state["training"]["epoch"], state["training"]["step"]) == (0, 7)
    resumed = train_supernet(space, digits, RECIPE, checkpoint=path)
    _equal_states(whole.state_dict(), resumed.state_dict())
