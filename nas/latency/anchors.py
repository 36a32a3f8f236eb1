"""Anchors: a few fixed networks of a space, timed beside every group of whole models, so
that how fast the machine runs at the time is measured and taken out of the figures.

A shared machine drifts: the same networks can run markedly slower at the end of a run
of minutes than at its start, smoothly, group after group (benchmarks/README.md, "Whole
models: the median of window floors, and anchors"). A calibration fitted on models timed
early and a validation timed later then disagree by the drift, whatever the predictor. The canary (nas.latency.canary) did not
track it: its 90 KB of weights stay in cache while a space's networks wait on shared
caches and memory. Anchors are networks of the space itself, timed in the same
interleaved rounds as the models of each group; the first group ever timed for a space
on a table sets their reference figures, and every window floor of every later group is
divided by its round's speed, the median over anchors of (floor in that round /
reference) (nas.latency.measure, ``Pacing``). Every whole-model figure of a space on one
table is thereby stated at the machine speed of that first group; the figure as measured
is kept beside it (``ModelRecord.speed``). Pacing by round rather than by group: a
machine's speed for memory-bound networks (onnxruntime `mobile`) moves from round to
round, which one speed per group misses (benchmarks/README.md, "Pacing by round, and
what a network reads").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nas.core.errors import NasError
from nas.latency.measure import Pacing
from nas.latency.runtimes import prepare_arch
from nas.latency.target import Target
from nas.model.arch import Architecture
from nas.space.searchspace import SearchSpace, sample_random

__all__ = ["ANCHORS", "ANCHOR_STREAM", "Anchors", "fresh_archs"]

#: Networks per space: each anchor's figure is itself a little off, so the speed of a
#: round is their median; with fewer, the groups of one validation still differed in
#: their mean error (benchmarks/README.md, "Figures behind choices in the code").
ANCHORS = 8
ANCHOR_STREAM = 3


def fresh_archs(
    space: SearchSpace, seed: int, stream: int, n: int, exclude: set[str]
) -> Iterator[Architecture]:
    """``n`` distinct architectures from a seeded stream, skipping ``exclude``."""
    rng = np.random.default_rng([seed, stream])
    seen = set(exclude)
    found = 0
    for _ in range(50 * n):
        arch = sample_random(space, rng)
        if arch.id in seen:
            continue
        seen.add(arch.id)
        found += 1
        yield arch
        if found == n:
            return


@dataclass
class Anchors:
    """A space's anchor networks and their reference figures (ms; empty until the first
    group sets them, which ``on_reference`` then stores)."""

    archs: list[Architecture]
    reference: dict[str, float] = field(default_factory=dict)
    on_reference: Callable[[Mapping[str, float]], None] = lambda _: None

    @classmethod
    def of(
        cls,
        space: SearchSpace,
        n: int = ANCHORS,
        on_reference: Callable[[Mapping[str, float]], None] = lambda _: None,
    ) -> Anchors:
        """The space's anchors: always the same ``n`` networks (fewer in a tiny space)."""
        archs = list(fresh_archs(space, 0, ANCHOR_STREAM, n, set()))
        return cls(archs, on_reference=on_reference)

    def pacing(self, target: Target) -> Pacing:
        """The anchors prepared on ``target``, pacing the rounds they are timed in."""
        ids = [a.id for a in self.archs]
        return Pacing(
            [prepare_arch(a, target) for a in self.archs],
            lambda floors: self.speeds(dict(zip(ids, floors, strict=True))),
        )

    def speeds(self, floors: Mapping[str, Sequence[float]]) -> list[float]:
        """How slow the machine ran in each round against the reference, from the
        anchors' window floors (arch id -> one floor per round): per round the median
        over anchors of floor / reference. The first call sets the reference (each
        anchor's median floor); an anchor without one (added since, or its reference
        lost) gets it at the others' speed."""
        if not floors:
            raise NasError("pacing needs at least one anchor", field="anchors")
        if not self.reference:
            self._refer({k: float(np.median(f)) for k, f in floors.items()})
        known = [
            np.asarray(f) / self.reference[k] for k, f in floors.items() if k in self.reference
        ]
        if not known:
            raise NasError(
                "the table's anchor references are for other networks than this space's "
                "anchors: measure with --fresh",
                field="anchors",
            )
        speeds = np.median(np.stack(known), axis=0)
        self._refer(
            {k: float(np.median(np.asarray(f) / speeds)) for k, f in floors.items()
             if k not in self.reference}
        )  # fmt: skip
        return [float(x) for x in speeds]

    def _refer(self, new: dict[str, float]) -> None:
        if new:
            self.reference.update(new)
            self.on_reference(new)
