"""Building a latency table: every unit of a space measured once per machine and target.

The slow step (minutes to hours), so it stores each group as it is measured: killed and
run again, it measures only what the table still lacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from nas.latency.canary import Canary
from nas.latency.lut import LatencyTable
from nas.latency.measure import MeasureSettings, NoisyMeasurementError
from nas.latency.progress import Progress, Silent
from nas.latency.runtimes import check_available
from nas.latency.target import Target, fingerprint
from nas.latency.timing import (
    UNIT_GROUP,
    Figure,
    eps_of,
    figures_of,
    interleaved,
    space_cold_bytes,
)
from nas.latency.units import space_units
from nas.space.searchspace import SearchSpace

__all__ = ["BuildReport", "build_table"]


@dataclass(frozen=True)
class BuildReport:
    """``figures`` counts table entries: per unit its hot and, on eager CPU for a space
    whose networks can spill the caches, its cold figure (nas.latency.cold,
    ``space_cold_bytes``); ``already``, ``measured`` and ``noisy`` count figures."""

    fingerprint: str
    units: int
    figures: int
    already: int
    measured: int
    noisy: tuple[str, ...]
    seconds: float


def build_table(
    space: SearchSpace,
    target: Target,
    table: LatencyTable,
    *,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
    retry_passes: int = 4,
) -> BuildReport:
    """Measure every unit of ``space`` the table lacks for this machine and ``target``."""
    check_available(target)
    progress = progress or Silent()
    start = time.perf_counter()
    fp = fingerprint(target)
    table.register(fp)
    units = space_units(space)
    have = table.entries(fp.key)
    wanted = figures_of(units, space_cold_bytes(space, fp))
    missing = [f for f in wanted if f.key not in have]
    progress.note(
        f"{len(units)} units in space {space.name} ({len(wanted)} figures): "
        f"{len(wanted) - len(missing)} already in the table, measuring {len(missing)} "
        f"({fp.describe()})"
    )
    progress.start("measuring units", len(missing))
    eps = eps_of(space)
    canary = Canary(target) if missing else None
    if canary is not None:
        table.set_reference(fp.key, canary.read())

    def measure(todo: list[Figure], advance: bool) -> list[Figure]:
        """Measure and store; returns the figures the machine was too busy for."""
        if not todo:
            return []
        assert canary is not None
        noisy: list[Figure] = []
        group_settings = settings or MeasureSettings.for_ops()
        for group in interleaved(
            todo, lambda f: f.runner(target, eps), target, group_settings, UNIT_GROUP, canary
        ):
            for t in group:
                if isinstance(t.result, NoisyMeasurementError):
                    noisy.append(t.item)
                else:
                    table.add_entry(fp.key, t.item.key, t.result, t.canary_ms)
            if advance:
                progress.advance(len(group))
        return noisy

    noisy = measure(missing, advance=True)
    # A few more passes, a growing pause apart, for units the machine was too busy for
    # (a burst of load passes; a machine that stays busy gets them reported, not stored).
    for attempt in range(retry_passes):
        if not noisy:
            break
        time.sleep(0.5 * attempt)
        noisy = measure(noisy, advance=False)
    return BuildReport(
        fp.key, len(units), len(wanted), len(wanted) - len(missing), len(missing) - len(noisy),
        tuple(f.key for f in noisy), time.perf_counter() - start,
    )  # fmt: skip
