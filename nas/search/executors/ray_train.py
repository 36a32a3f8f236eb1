"""Data-parallel supernet training on Ray Train (``TorchTrainer``): the second module of
nas that imports Ray, since training a supernet on several workers is Ray Train's job
as running trials is Ray Tune's.

Each worker runs nas.supernet.training's ``Loop`` on its share of every global batch
(every ``world``-th sample) inside DistributedDataParallel (gloo on the CPU, nccl on
GPUs). A step runs several different paths, so DDP looks for unused parameters; every
subnet's backward all-reduces, so the gradients of all sandwich subnets are summed
(each averaged over the workers), then each worker takes the same optimizer step. All
workers draw the same subnets (one seeded Generator each, equal states). Rank 0
writes the checkpoints, to a path every worker reaches: this machine, or a shared
file system on a cluster.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from nas.core.errors import NasError, one_line
from nas.search.config import SearchConfig
from nas.search.executors.ray_tune import _connect
from nas.space.searchspace import SearchSpace
from nas.supernet.recipe import SupernetRecipe
from nas.supernet.store import (
    data_fingerprint,
    load_supernet,
    read_checkpoint,
    save_checkpoint,
    space_fingerprint,
)
from nas.supernet.supernet import Supernet
from nas.supernet.training import Loop, check_data
from nas.train.dataset import Dataset

__all__ = ["train_supernet_distributed"]


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: resume from the checkpoint if there is one, train, and let
    rank 0 save."""
    space: SearchSpace = config["space"]
    data: Dataset = config["data"]
    recipe: SupernetRecipe = config["recipe"]
    path = Path(config["checkpoint"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(config["threads"])
    device = ray.train.torch.get_device()
    data_fp = config["data_fp"]
    saved = read_checkpoint(path, config["space_fp"], data_fp, recipe) if path.exists() else None
    torch.manual_seed(recipe.seed + rank)  # dropout differs per shard, as in one process
    net = Supernet(space, seed=recipe.seed)
    if saved is not None:
        net.load_state_dict(saved["model"], strict=True)
    net = net.to(device).to(memory_format=torch.channels_last)  # as train_supernet
    ddp = ray.train.torch.prepare_model(
        net, parallel_strategy_kwargs={"find_unused_parameters": True}
    )
    loop = Loop(net, data, recipe, device, model=ddp, rank=rank, world=world)
    if saved is not None:
        loop.restore(saved["training"])
    every = recipe.checkpoint_every

    def on_step(epoch_end: bool) -> None:
        if rank == 0 and (epoch_end or (every and loop.done % every == 0)):
            finished = loop.epoch == recipe.epochs
            state = loop.state()
            save_checkpoint(
                path, net, data_fp=data_fp, recipe=recipe, done=finished, training=state
            )
        if epoch_end:
            ray.train.report({"epoch": loop.epoch, "steps": loop.done})

    loop.run(on_step=on_step)


def train_supernet_distributed(
    space: SearchSpace,
    data: Dataset,
    recipe: SupernetRecipe,
    *,
    checkpoint: Path,
    workers: int,
    use_gpu: bool = False,
    search: SearchConfig | None = None,
    threads: int = 1,
    num_cpus: int | None = None,
) -> Supernet:
    """``nas.supernet.train_supernet`` on ``workers`` Ray Train workers (one GPU each
    with ``use_gpu``); returns the trained supernet (eval mode, CPU).

    ``search``: where Ray runs (its ``ray_address``; default: a private local Ray unless
    one runs already). The global batch is ``recipe.batch_size``, split evenly over the
    workers; ``threads``: torch threads per worker; ``num_cpus``: the CPUs of a private
    local Ray (None: all). A finished checkpoint is loaded without starting Ray; an unfinished one is
    resumed; one of another space, data or recipe is refused (NasError naming it).
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise NasError(f"must be a positive integer, got {workers!r}", field="workers")
    if recipe.batch_size % workers:
        raise NasError(
            f"the batch ({recipe.batch_size}) must split evenly over {workers} workers",
            field="workers",
        )
    check_data(space, data, recipe)
    space_fp, data_fp = space_fingerprint(space), data_fingerprint(data)
    path = Path(checkpoint).resolve()
    if path.exists() and read_checkpoint(path, space_fp, data_fp, recipe)["done"]:
        return load_supernet(path, space, data_fp, recipe)
    _connect(search or SearchConfig(), num_cpus)
    config = {
        "space": space,
        "data": data,
        "recipe": recipe,
        "checkpoint": str(path),
        "space_fp": space_fp,
        "data_fp": data_fp,
        "threads": threads,
    }
    with tempfile.TemporaryDirectory(prefix="nas-supernet-") as runs:
        trainer = TorchTrainer(
            _worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
            run_config=RunConfig(name="supernet", storage_path=runs),
        )
        try:
            trainer.fit()
        except Exception as err:  # Ray wraps a worker's error; a NasError inside is bad input
            cause = err
            while cause.__cause__ is not None and not isinstance(cause, NasError):
                cause = cause.__cause__
            if isinstance(cause, NasError):
                raise cause from None
            raise RuntimeError(f"distributed supernet training failed: {one_line(err)}") from err
    return load_supernet(path, space, data_fp, recipe)
