"""The supernet of a search space: every architecture of the space is a path through it.

Layout: ``stem`` (an elastic conv-BN-act), ``stages[i][family][j]`` (block position
``j`` of one op family of stage ``i``, see ``nas.supernet.plan``), ``head``. A path is
resolved from the builder's own recipes (``nas.model.builder.layout``), so it runs
each block with exactly the arguments ``build(arch)`` would construct it with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.model.builder import init_weights, layout
from nas.space.searchspace import SearchSpace
from nas.supernet.blocks import ElasticBlock, Kwargs, elastic_block
from nas.supernet.head import ElasticHead
from nas.supernet.layers import ElasticConvBNAct
from nas.supernet.plan import stage_families
from nas.supernet.spec import SupernetSpec

__all__ = ["Path", "Step", "Supernet"]


@dataclass(frozen=True)
class Step:
    """One block of a path: where it sits, the elastic block and the builder's recipe."""

    stage: int
    index: int
    block: ElasticBlock
    kwargs: Kwargs


@dataclass(frozen=True)
class Path:
    """An architecture resolved to the supernet's modules and the builder's recipes."""

    arch: Architecture
    stem: Kwargs
    steps: tuple[Step, ...]
    head: Kwargs


class Supernet(nn.Module):
    """Weight-sharing supernet of ``space``: ``forward(x, arch)`` runs ``arch``'s path.

    ``seed`` fixes the initial weights as ``build`` does (None: torch's RNG); kernel
    transformation matrices start at the identity.
    """

    def __init__(self, space: SearchSpace, *, seed: int | None = 0) -> None:
        super().__init__()
        self.space = space  # random subnets are drawn from it
        self.spec = SupernetSpec.from_space(space)
        spec = self.spec
        self.stem = ElasticConvBNAct(
            spec.top["in_channels"][0], max(spec.stem["channels"]), spec.stem["kernel"]
        )
        self.stages = nn.ModuleList()
        for i in range(len(spec.stages)):
            families = nn.ModuleDict()
            for fam in stage_families(spec, i):
                families[fam.name] = nn.ModuleList(fam.create())
            self.stages.append(families)
        self.head = ElasticHead(
            spec.widths(len(spec.stages)), spec.head["channels"], spec.top["num_classes"][0]
        )
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        init_weights(self, generator)

    def path(self, arch: Architecture) -> Path:
        """``arch`` resolved to modules; a one-line NasError naming the field of an
        architecture outside the supernet."""
        self.spec.check(arch)
        plan = layout(arch)
        recipes = [r for stage in plan.stages for r in stage]
        steps = []
        for (i, j, b), r in zip(arch.blocks(), recipes, strict=True):
            cls = elastic_block(r.cls, op=b.op, field=f"stages[{i}].op")
            family = cls.family(b)
            try:
                blocks = self.stages[i][family]
            except KeyError:
                blocks = ()
            if j >= len(blocks):  # the spec admits it, but no valid block reaches here
                raise NasError(
                    f"the supernet holds no block {j} of family {family!r}", field=f"stages[{i}]"
                )
            steps.append(Step(i, j, blocks[j], r.kwargs))
        return Path(arch, plan.stem.kwargs, tuple(steps), plan.head.kwargs)

    def forward(self, x: torch.Tensor, arch: Architecture | Path) -> torch.Tensor:  # type: ignore[override]
        """The output of ``arch``'s path (a resolved ``Path`` skips the resolution)."""
        p = arch if isinstance(arch, Path) else self.path(arch)
        s = p.stem
        x = self.stem(x, s["cout"], s["kernel"], s["stride"], 1, s["act"], s["eps"])
        for step in p.steps:
            x = step.block(x, step.kwargs)
        return self.head(x, p.head)

    def state_of(self, arch: Architecture | Path) -> dict[str, torch.Tensor]:
        """The state dict of ``build(arch)`` holding this path's weights (copies)."""
        p = arch if isinstance(arch, Path) else self.path(arch)
        s = p.stem
        out = {
            f"stem.{k}": v for k, v in self.stem.extract(s["cin"], s["cout"], s["kernel"]).items()
        }
        for step in p.steps:
            prefix = f"stages.{step.stage}.{step.index}."
            out.update({prefix + k: v for k, v in step.block.extract(step.kwargs).items()})
        out.update({f"head.{k}": v for k, v in self.head.extract(p.head).items()})
        return out
