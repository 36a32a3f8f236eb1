"""One sandwich epoch with the supernet contiguous against channels_last, and one epoch
of the largest subnet alone in both formats, alternated (issue 21's cost goal).

    nice -n 10 python benchmarks/supernet_format.py --data ../shared/data/mnist \
        [--limit 2000] [--resolution 8] [--repeats 3]

Prints the fastest of ``--repeats`` per arm and the sandwich-to-largest ratio within
each format. The sandwich is ``nas.supernet.training.Loop`` for one epoch (the largest,
the smallest and 2 random subnets a step), without checkpoints.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from nas.model.arch import Architecture
from nas.space.searchspace import load_space
from nas.supernet import Supernet, SupernetRecipe, SupernetSpec, largest
from nas.supernet.training import Loop
from nas.train.config import TrainConfig
from nas.train.data import load_dataset
from nas.train.loop import evaluate


class ContiguousLoop(Loop):
    """``Loop`` with its inputs left contiguous (it makes them channels_last)."""

    def _inputs(self, xs: torch.Tensor) -> Callable[[Architecture], torch.Tensor]:
        cache: dict[int, torch.Tensor] = {}

        def at(arch: Architecture) -> torch.Tensor:
            if arch.resolution not in cache:
                cache[arch.resolution] = self.data.normalise(xs, arch.resolution)
            return cache[arch.resolution]

        return at


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder of the MNIST IDX files")
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("mnist", path=args.data, seed=0, limit=args.limit)
    space = load_space("tiny").with_data(in_channels=1, num_classes=10, resolution=args.resolution)
    one = SupernetRecipe(epochs=1, batch_size=64, lr=0.05, random_subnets=2, checkpoint_every=0)
    big = largest(SupernetSpec.from_space(space))
    names = {False: "contiguous", True: "channels_last"}
    sandwich: dict[bool, list[float]] = {False: [], True: []}
    alone: dict[bool, list[float]] = {False: [], True: []}
    for k in range(args.repeats):
        for cl in (False, True):
            net = Supernet(space, seed=0)
            if cl:
                net = net.to(memory_format=torch.channels_last)
            loop = (Loop if cl else ContiguousLoop)(net, data, one, torch.device("cpu"))
            t0 = time.perf_counter()
            loop.run(on_step=lambda _end: None)
            sandwich[cl].append(time.perf_counter() - t0)
            cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05, seed=k, channels_last=cl)
            alone[cl].append(evaluate(big, data, cfg).history[0].seconds)
    for cl, name in names.items():
        s, a = min(sandwich[cl]), min(alone[cl])
        print(
            f"{name}: sandwich {s:.2f} s, largest alone {a:.2f} s, ratio {s / a:.2f} "
            f"(all {[round(t, 2) for t in sandwich[cl]]} / {[round(t, 2) for t in alone[cl]]})"
        )


if __name__ == "__main__":
    main()
