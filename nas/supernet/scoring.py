"""Scoring subnets with inherited weights: the one-shot estimate of their accuracy.

Per subnet: BatchNorm statistics re-estimated on K fixed training batches (the
supernet's own mix every path that trained, nas.supernet.bn), then top-1 accuracy on a
fixed validation subset, batched, without autograd. The batches and the subset are the
same for every subnet, so scores differ only by the subnets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nas.core.errors import NasError
from nas.core.strict import is_int
from nas.model.arch import Architecture
from nas.supernet.bn import reestimate_bn
from nas.supernet.supernet import Supernet
from nas.train.dataset import Dataset

__all__ = ["bn_picks", "score_subnets"]

#: Validation batch (no gradients: larger is cheaper, memory allowing).
_EVAL_BATCH = 512


def _is_statistic(name: str) -> bool:
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


def _positive(value: object, name: str, minimum: int) -> int:
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        raise NasError(f"must be an integer >= {minimum}, got {value!r}", field=name)
    return int(value)  # type: ignore[arg-type]


def bn_picks(n_train: int, batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """Indices of the training samples that re-estimate BatchNorm: up to ``batches`` full
    batches of ``batch_size``, drawn once with ``seed``. Scoring a subnet and exporting its
    inherited weights both draw them here, so the exported statistics are the scored ones."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(n_train, generator=g)[: batches * batch_size].split(batch_size)
    return [i for i in picks if len(i) == batch_size]


def score_subnets(
    supernet: Supernet,
    archs: Sequence[Architecture],
    data: Dataset,
    *,
    bn_batches: int,
    val_subset: int,
    batch_size: int,
    seed: int,
) -> list[float]:
    """Validation accuracy of each of ``archs`` run through ``supernet``.

    ``bn_batches`` training batches of ``batch_size``, drawn once with ``seed``, re-estimate
    BN for each subnet; ``val_subset`` is how many of the first validation samples are
    scored (0: all). The supernet's own BN statistics are restored afterwards, as is its
    mode. A NasError names an architecture the supernet does not cover.
    """
    k = _positive(bn_batches, "bn_batches", 1)
    b = _positive(batch_size, "batch_size", 2)
    m = _positive(val_subset, "val_subset", 0)
    paths = [supernet.path(a) for a in archs]  # every arch checked before any work
    n_train, n_val = len(data.train), len(data.val)
    if n_train < b:
        raise NasError(f"the training split has {n_train} samples, fewer than {b}", field="data")
    if n_val == 0:
        raise NasError("the validation split is empty", field="data")
    m = min(m or n_val, n_val)
    device = supernet.stem.conv.weight.device
    train_x = [data.train.x[i].to(device) for i in bn_picks(n_train, k, b, seed)]
    val_x, val_y = data.val.x[:m].to(device), data.val.y[:m].to(device)
    inputs: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    def at(res: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The BN batches and the validation batches at ``res`` px (normalised once)."""
        if res not in inputs:
            val = [data.normalise(x, res) for x in val_x.split(_EVAL_BATCH)]
            inputs[res] = ([data.normalise(x, res) for x in train_x], val)
        return inputs[res]

    running = {n: v.clone() for n, v in supernet.state_dict().items() if _is_statistic(n)}
    training = supernet.training
    scores = []
    try:
        for path in paths:
            bn, val = at(path.arch.resolution)
            reestimate_bn(supernet, bn, arch=path)
            supernet.eval()
            correct = 0
            with torch.inference_mode():
                for x, y in zip(val, val_y.split(_EVAL_BATCH), strict=True):
                    correct += int((supernet(x, path).argmax(dim=1) == y).sum())
            scores.append(correct / m)
    finally:
        supernet.load_state_dict(running, strict=False)
        supernet.train(training)
    return scores
