"""Grow a found network into a family by compound scaling, through the search's own
orchestration (``nas scale``).

1. The grid: every ``(alpha, beta, gamma)`` on a step grid whose phi=1 network costs
   about ``growth`` times the base: ``alpha * beta**2 * gamma**2 ~= 2`` in ``flops`` mode
   (EfficientNet's constraint), predicted latency of the scaled network over the base's
   in ``latency`` mode (where "FLOPs double" does not mean "latency doubles"). Points
   that round to the same network are one candidate; at most ``max_points`` are kept,
   evenly spread over the grid.
2. Each candidate's phi=1 network is a trial of a study of its own (``<study>-scale``:
   Ray Tune + Optuna, single objective: validation accuracy); the best point wins.
3. The family phi = 0..N is built with ``nas.scale.member.family_member`` (cost about
   ``growth**phi`` times the base's, rounding corrected), trained as trials of another
   study (``<study>-family``), then tested, measured and exported like a front.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.errors import NasError
from nas.latency.lut import LatencyTable
from nas.latency.measure import Measurement
from nas.latency.runtimes import check_available
from nas.latency.workflow import measure_paced
from nas.model.arch import Architecture
from nas.model.cost import cost
from nas.scale.compound import Coefficients, grid_by, scale
from nas.scale.member import family_member
from nas.search.config import StudyConfig
from nas.search.pipeline import FrontMember, finish, member_row, publish
from nas.search.plan import Candidate
from nas.search.results import Evaluation, EvaluationStore
from nas.search.runner import run_trials
from nas.search.selection import sub_study
from nas.search.setup import SearchSetup, prepare

__all__ = [
    "MODES",
    "Family",
    "GridResult",
    "ScaleConfig",
    "grid_candidates",
    "scale_family",
    "train_networks",
]

MODES = ("flops", "latency")


@dataclass(frozen=True)
class ScaleConfig:
    #: "flops": alpha * beta^2 * gamma^2 ~= growth; "latency": predicted latency x growth.
    mode: str = "flops"
    #: The family: phi = 0 (the base), 1, ..., phis.
    phis: int = 2
    growth: float = 2.0
    #: Grid: each multiplier on lo=1, 1+step, ..., <= hi; cost within tolerance of growth.
    step: float = 0.05
    hi: float = 1.5
    tolerance: float = 0.1
    #: Grid points trained (evenly spread over the distinct phi=1 networks).
    max_points: int = 8
    #: Scaled resolutions snap to a multiple of this (1: plain rounding).
    resolution_multiple: int = 1
    #: Rounding correction (nas.scale.member.family_member): a member is scaled with the phi'
    #: within +-search_width of phi, and a resolution up to resolution_steps multiples off
    #: gamma^phi', whose cost is nearest growth x the previous member's. On small networks
    #: plain scaling rarely lands within +-10% of 2x per step; this mostly does
    #: (benchmarks/README.md, "Figures behind choices in the code").
    #: None: 1 in flops mode, 2 in latency mode (latency has a fixed per-layer part, so
    #: doubling it takes a longer step along the compound direction).
    search_width: float | None = None
    resolution_steps: int = 6
    #: Train the family members (else they are sized and exported untrained).
    train: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise NasError(f"unknown mode {self.mode!r} (known: {', '.join(MODES)})", field="mode")
        for name in ("phis", "max_points", "resolution_multiple"):
            if getattr(self, name) < 1:
                raise NasError("must be a positive integer", field=name)
        if self.resolution_steps < 0:
            raise NasError("must be >= 0", field="resolution_steps")
        if self.search_width is not None and self.search_width < 0:
            raise NasError("must be >= 0", field="search_width")

    @property
    def window(self) -> float:
        if self.search_width is not None:
            return self.search_width
        return 2.0 if self.mode == "latency" else 1.0
        if not (self.growth > 1 and self.step > 0 and self.hi > 1 and self.tolerance >= 0):
            raise NasError(
                "need growth > 1, step > 0, hi > 1, tolerance >= 0",
                field="growth" if self.growth <= 1 else "step" if self.step <= 0 else "hi",
            )


@dataclass(frozen=True)
class GridPoint:
    coefficients: Coefficients
    arch: Architecture  # the phi=1 network
    ratio: float  # its cost over the base's
    val_accuracy: float | None = None


@dataclass(frozen=True)
class GridResult:
    points: tuple[GridPoint, ...]
    best: GridPoint


@dataclass(frozen=True)
class Member:
    phi: int
    effective_phi: float
    arch: Architecture
    params: int
    macs: int
    predicted_ms: float
    #: Measured in isolation on the target (None: this machine is not the target).
    measured_ms: float | None
    #: Trained, tested, measured, exported (None when the family was not trained).
    trained: FrontMember | None
    export_dir: str


@dataclass(frozen=True)
class Family:
    study: str
    mode: str
    base: Architecture
    grid: GridResult
    members: tuple[Member, ...]
    seconds: float

    def rows(self) -> list[dict[str, Any]]:
        c = self.grid.best.coefficients
        out = []
        for m in self.members:
            row: dict[str, Any] = {
                "phi": m.phi,
                "effective_phi": m.effective_phi,
                "depth": c.alpha**m.effective_phi,
                "width": c.beta**m.effective_phi,
                "resolution_multiplier": m.arch.resolution / self.base.resolution,
                "resolution": m.arch.resolution,
                "arch_id": m.arch.id,
                "arch": m.arch.compact(),
                "params": m.params,
                "macs": m.macs,
                "predicted_ms": m.predicted_ms,
                "measured_ms": m.measured_ms,
                "export": m.export_dir,
            }
            if m.trained is not None:
                row.update(member_row(m.trained))
            out.append(row)
        return out


def _cost_fn(setup: SearchSetup, mode: str) -> Callable[[Architecture], float]:
    if mode == "flops":
        return lambda a: float(cost(a).macs)
    return lambda a: setup.predictor.predict(a)


def grid_candidates(
    base: Architecture, cfg: ScaleConfig, cost_of: Callable[[Architecture], float]
) -> list[GridPoint]:
    """The grid points to train: the constraint met, one per distinct phi=1 network (the
    one nearest the target cost), at most ``cfg.max_points`` evenly spread."""
    base_cost = cost_of(base)
    phi1: dict[Coefficients, Architecture] = {}

    def network(c: Coefficients) -> Architecture:
        if c not in phi1:
            phi1[c] = scale(base, c.at(1), resolution_multiple=cfg.resolution_multiple)
        return phi1[c]

    if cfg.mode == "flops":
        ratio = lambda c: c.flops_factor  # noqa: E731  (EfficientNet's constraint)
    else:
        ratio = lambda c: cost_of(network(c)) / base_cost  # noqa: E731
    kept = grid_by(ratio, tolerance=cfg.tolerance, step=cfg.step, target=cfg.growth, hi=cfg.hi)
    if not kept:
        raise NasError(
            f"no (alpha, beta, gamma) on the grid (step {cfg.step}, up to {cfg.hi}) meets the "
            f"{cfg.mode} constraint within {cfg.tolerance:.0%}: raise hi or tolerance",
            field="scale",
        )
    distinct: dict[str, GridPoint] = {}
    for c in kept:
        point = GridPoint(c, network(c), ratio(c))
        prior = distinct.get(point.arch.id)
        if prior is None or abs(point.ratio - cfg.growth) < abs(prior.ratio - cfg.growth):
            distinct[point.arch.id] = point
    points = sorted(distinct.values(), key=lambda p: dataclasses.astuple(p.coefficients))
    if len(points) > cfg.max_points:
        n = cfg.max_points
        points = [points[round(i * (len(points) - 1) / max(1, n - 1))] for i in range(n)]
    return points


def _train(
    setup: SearchSetup, sub: StudyConfig, candidates: list[Candidate], num_cpus: int | None
) -> dict[str, Evaluation]:
    """Train the candidates as one trial each; the complete evaluations by arch id."""
    _, errors = run_trials(
        dataclasses.replace(setup, study=sub), candidates=candidates, num_cpus=num_cpus
    )
    done = {
        e.arch_id: e
        for e in EvaluationStore(sub.search.storage).of_study(sub.name)
        if e.status == "complete"
    }
    missing = [c.arch.short_id for c in candidates if c.arch.id not in done]
    if missing:
        first = f" (first error: {errors[0]})" if errors else ""
        raise NasError(
            f"{len(missing)} of {len(candidates)} networks did not train to the end{first}",
            field="scale",
            source=sub.name,
        )
    return done


def train_networks(
    setup: SearchSetup,
    suffix: str,
    archs: list[Architecture],
    out_root: Path,
    *,
    num_cpus: int | None = None,
) -> list[FrontMember]:
    """Train fixed networks as trials of the study ``<study>-<suffix>`` (one each, on Ray,
    reusing any already trained under the same budget), then test, measure and export
    them like a front; in the order given."""
    sub = sub_study(setup.study, suffix)
    evals = _train(setup, sub, [Candidate(a) for a in archs], num_cpus)
    return finish(dataclasses.replace(setup, study=sub), [evals[a.id] for a in archs], out_root)


def scale_family(
    study: StudyConfig,
    base: Architecture,
    cfg: ScaleConfig,
    *,
    note: Callable[[str], None] = lambda _: None,
    num_cpus: int | None = None,
) -> Family:
    """Grid-search the coefficients on ``study``'s data and recipe, then build, train,
    test, measure and export the family phi = 0..cfg.phis (see the module docstring)."""
    start = time.perf_counter()
    if study.tabular.benchmark:
        raise NasError(
            "compound scaling trains networks: a tabular study has no data to train on",
            field="tabular.benchmark",
            source=study.source,
        )
    setup = prepare(study, note=note)
    data = setup.data
    assert data is not None and setup.target is not None
    if (base.in_channels, base.num_classes) != (data.in_channels, data.num_classes):
        raise NasError(
            f"the network takes {base.in_channels} channels and {base.num_classes} classes, "
            f"the study's data {data.in_channels} and {data.num_classes}",
            field="arch",
            source=study.source,
        )
    cost_of = _cost_fn(setup, cfg.mode)
    scale_study = sub_study(study, "scale")
    grid = _search_grid(setup, scale_study, base, cfg, cost_of, note, num_cpus)
    sized = _sized(base, grid.best.coefficients, cfg, cost_of, note)
    out_root = study.export_root / "family"
    members = _members(setup, sized, cfg, out_root, num_cpus)
    family = Family(study.name, cfg.mode, base, grid, members, time.perf_counter() - start)
    publish(scale_study, "family", family_record(family, cfg), out_root / "family.json")
    return family


def _search_grid(
    setup: SearchSetup,
    scale_study: StudyConfig,
    base: Architecture,
    cfg: ScaleConfig,
    cost_of: Callable[[Architecture], float],
    note: Callable[[str], None],
    num_cpus: int | None,
) -> GridResult:
    """Train each grid point's phi=1 network as a trial of ``scale_study``; the best
    validation accuracy wins (ties: the cheaper network)."""
    points = grid_candidates(base, cfg, cost_of)
    note(f"{len(points)} grid points to train ({cfg.mode} mode), phi=1 networks:")
    for p in points:
        c = p.coefficients
        note(f"  alpha {c.alpha:.2f} beta {c.beta:.2f} gamma {c.gamma:.2f}: x{p.ratio:.2f}")
    trained = _train(
        setup,
        scale_study,
        [Candidate(p.arch, tuple(_coefficient_attrs(p))) for p in points],
        num_cpus,
    )
    points = [dataclasses.replace(p, val_accuracy=trained[p.arch.id].val_accuracy) for p in points]
    best = max(points, key=lambda p: (p.val_accuracy or 0.0, -p.ratio))
    return GridResult(tuple(points), best)


def _sized(
    base: Architecture,
    coefficients: Coefficients,
    cfg: ScaleConfig,
    cost_of: Callable[[Architecture], float],
    note: Callable[[str], None],
) -> list[tuple[int, Architecture, float]]:
    """The family's networks as (phi, network, effective phi'), phi = 0 the base."""
    sized = [(0, base, 0.0)]
    previous, eff = cost_of(base), 0.0
    for phi in range(1, cfg.phis + 1):
        # Each step aims at growth x the previous member, one phi further along the same
        # compound direction (latency, with its fixed per-layer part, may need more).
        arch, eff = family_member(
            base,
            coefficients,
            eff + 1.0,
            cost=cost_of,
            target_cost=cfg.growth * previous,
            growth=cfg.growth,
            search_width=cfg.window,
            resolution_multiple=cfg.resolution_multiple,
            resolution_steps=cfg.resolution_steps,
        )
        step = cost_of(arch) / previous  # cost_of is MACs or a cached-table prediction
        if abs(step / cfg.growth - 1) > 0.1:
            note(
                f"phi={phi}: cost x{step:.2f} over phi={phi - 1} (aim x{cfg.growth:g}): this "
                "network is too small for rounding to land nearer"
            )
        previous *= step
        sized.append((phi, arch.replace(name=f"{base.name or 'arch'}_phi{phi}"), eff))
    return sized


def _members(
    setup: SearchSetup,
    sized: list[tuple[int, Architecture, float]],
    cfg: ScaleConfig,
    out_root: Path,
    num_cpus: int | None,
) -> tuple[Member, ...]:
    """Train, test, measure and export the family (or, with ``cfg.train`` off, export
    and measure it untrained)."""
    target = setup.target
    assert target is not None
    finished: dict[str, FrontMember] = {}
    if cfg.train:
        trained_members = train_networks(
            setup, "family", [a for _, a, _ in sized], out_root, num_cpus=num_cpus
        )
        finished = {m.evaluation.arch_id: m for m in trained_members}
    else:
        from nas.model.export import export

        for _, a, _ in sized:
            export(a, out_root / a.short_id, overwrite=True)

    untrained = [a for _, a, _ in sized if a.id not in finished]
    timed: dict[str, Measurement] = {}
    if untrained:
        try:
            check_available(target)
        except NasError:
            pass
        else:
            table = LatencyTable(setup.study.latency.db)
            timed = measure_paced(setup.space, target, table, untrained)

    def measured(a: Architecture) -> float | None:
        if a.id in finished:
            return finished[a.id].measured_ms
        return timed[a.id].ms if a.id in timed else None

    def member(phi: int, a: Architecture, eff: float) -> Member:
        c = cost(a)
        return Member(
            phi,
            eff,
            a,
            c.params,
            c.macs,
            setup.predictor.predict(a),
            measured(a),
            finished.get(a.id),
            str(out_root / a.short_id),
        )

    return tuple(member(phi, a, eff) for phi, a, eff in sized)


def _coefficient_attrs(p: GridPoint) -> list[tuple[str, float]]:
    c = p.coefficients
    return [("alpha", c.alpha), ("beta", c.beta), ("gamma", c.gamma), ("cost_ratio", p.ratio)]


def family_record(family: Family, cfg: ScaleConfig) -> dict[str, Any]:
    """The family as plain data: storage user attribute and family.json."""
    best = family.grid.best.coefficients
    return {
        "study": family.study,
        "mode": family.mode,
        "base": family.base.id,
        "config": dataclasses.asdict(cfg),
        "coefficients": dataclasses.asdict(best),
        "grid": [
            {
                **dataclasses.asdict(p.coefficients),
                "cost_ratio": p.ratio,
                "arch_id": p.arch.id,
                "val_accuracy": p.val_accuracy,
            }
            for p in family.grid.points
        ],
        "members": family.rows(),
        "growth_per_step": [
            _step_growth(family.members, i, family.mode) for i in range(1, len(family.members))
        ],
    }


def _step_growth(members: tuple[Member, ...], i: int, mode: str) -> float:
    """Cost of member i over member i-1 (MACs or predicted latency, by mode)."""
    prev, cur = members[i - 1], members[i]
    if mode == "flops":
        return cur.macs / prev.macs
    return cur.predicted_ms / prev.predicted_ms if prev.predicted_ms > 0 else math.nan
