"""How much cheaper is the analytic cost model than building and counting?

    python benchmarks/cost_model.py [--repeats 200]

Prints, per reference architecture, the time of ``nas.model.cost.cost(arch)`` against building
the module and counting parameters and MACs with torch's FlopCounterMode (on the meta
device, so no arithmetic is done: this is the cheapest counting there is).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.model.builder import build
from nas.model.cost import cost
from nas.model.reference import load_arch, reference_names


def counted(arch) -> tuple[int, int]:
    with torch.device("meta"):
        model = build(arch, seed=None).eval()
    x = torch.empty(1, arch.in_channels, arch.resolution, arch.resolution, device="meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return sum(p.numel() for p in model.parameters()), fc.get_total_flops() // 2


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'architecture':18s} {'analytic':>12s} {'build+count':>12s} {'ratio':>8s}  agree")
    for name in reference_names():
        arch = load_arch(name)
        t_cost = timed(lambda a=arch: cost(a), args.repeats)
        t_count = timed(lambda a=arch: counted(a), max(3, args.repeats // 20))
        c = cost(arch)
        agree = (c.params, c.macs) == counted(arch)
        print(
            f"{name:18s} {t_cost * 1e6:10.1f}us {t_count * 1e3:10.1f}ms "
            f"{t_count / t_cost:7.0f}x  {agree}"
        )


if __name__ == "__main__":
    main()
