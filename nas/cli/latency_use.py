"""``nas latency`` commands that use a table or the measurement harness.

``predict`` and ``report`` read a built table; ``measure`` and ``noise`` time networks
here and store nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nas.cli.latency_options import DB, FINGERPRINT, RESOLUTION, SPACE, space_of, takes_target
from nas.cli.util import PLOTLYJS_OPTION, BarProgress, handles_bad_input

if TYPE_CHECKING:
    from nas.latency.target import Target

__all__ = ["measure_cmd", "noise_cmd", "predict_cmd", "report_cmd"]


@handles_bad_input
@takes_target(cuda=False, measures=False)
def predict_cmd(
    arch: str = typer.Argument(..., help="Architecture JSON file or reference name."),
    db: str = DB,
    space: str | None = typer.Option(
        None, "--space", help="Whose calibration to use (needed when the table has several)."
    ),
    fingerprint_key: str | None = FINGERPRINT,
    measure_missing: bool = typer.Option(
        False,
        "--measure-missing/--no-measure-missing",
        help="Measure units the table lacks (this machine's table only).",
    ),
    *,
    tgt: Target,
) -> None:
    """Predicted latency of an architecture from the table."""
    from nas.latency.lut import LatencyTable
    from nas.latency.workflow import load_predictor
    from nas.model.reference import load_arch

    a = load_arch(arch)
    predictor = load_predictor(
        LatencyTable(db),
        tgt,
        space=space,
        fingerprint_key=fingerprint_key,
        measure_missing=measure_missing,
        norm_eps=a.norm_eps,
    )
    before = len(predictor.entries)
    t0 = time.perf_counter()
    ms = predictor.predict(a)
    took = time.perf_counter() - t0
    if len(predictor.entries) > before:
        typer.echo(
            f"measured {len(predictor.entries) - before} missing unit(s) and stored them", err=True
        )
    typer.echo(f"{ms:.3f} ms predicted ({predictor.description}; {took * 1e6:.0f} us)")


@handles_bad_input
@takes_target()
def measure_cmd(
    arch: str = typer.Argument(..., help="Architecture JSON file or reference name."),
    *,
    tgt: Target,
    as_json: bool = typer.Option(False, "--json", help="Print the measurement as JSON."),
) -> None:
    """Measure an architecture's whole-model latency in isolation."""
    from nas.latency.measure import MeasureSettings
    from nas.latency.workflow import measure_whole
    from nas.model.reference import load_arch

    a = load_arch(arch)
    m, cost_s = measure_whole(a, tgt)
    if as_json:
        typer.echo(
            json.dumps(
                {**dataclasses.asdict(m), "rel_iqr": m.rel_iqr, "cv": m.cv, "cost_s": cost_s}
            )
        )
        return
    typer.echo(
        f"{m.ms:.3f} ms ({MeasureSettings().label}, {m.windows} taken, settled within "
        f"{100 * m.floor_gap:.1f}%; "
        f"median {m.median_ms:.3f} ms, IQR {m.iqr_ms:.3f} ms over {m.samples} samples x "
        f"{m.inner}) on {tgt.name}; took {cost_s:.2f} s"
    )


@handles_bad_input
@takes_target()
def noise_cmd(
    seconds: float = typer.Option(30.0, "--seconds", help="How long to keep measuring."),
    space: str | None = typer.Option(
        None, "--space", help="Measure networks of this space instead of the canary."
    ),
    resolution: int | None = RESOLUTION,
    networks: int = typer.Option(8, "--networks", help="How many networks of --space."),
    seed: int = typer.Option(0, "--seed", help="Which networks of --space."),
    *,
    tgt: Target,
) -> None:
    """How steady this machine is now: networks measured again and again.

    Run it before building a table or validating a predictor: two measurements of one
    model agree no better than these, so their agreement bounds what validation can show.
    The canary (the default) stays in the nearest caches; ``--space`` measures networks
    of the space about to be validated, whose weights also wait on shared caches and
    memory.
    """
    import math

    import numpy as np

    from nas.core.errors import NasError
    from nas.latency.canary import steadiness
    from nas.space.searchspace import sample_random

    if not seconds > 0:
        raise NasError(f"must be positive, got {seconds}", field="--seconds")
    if networks < 1:
        raise NasError(f"must be a positive integer, got {networks}", field="--networks")
    archs, what = None, "canary"
    if space is not None:
        sp = space_of(space, resolution)
        rng = np.random.default_rng(seed)
        archs = [sample_random(sp, rng) for _ in range(networks)]
        what = f"{networks} networks of {sp.name}"
    with BarProgress() as progress:
        progress.start(f"measuring the {what}", round(seconds))
        done = [0]

        def tick(elapsed: float) -> None:
            step = min(round(seconds), int(elapsed)) - done[0]
            if step > 0:
                progress.advance(step)
                done[0] += step

        s = steadiness(tgt, seconds, archs=archs, on_reading=tick)
        progress.advance(round(seconds) - done[0])
    within = s.agreement(0.10)
    agree = (
        "no network was measured twice"
        if math.isnan(within)
        else f"two measurements of one network agree within +-5% for "
        f"{100 * s.agreement(0.05):.0f}%, within +-10% for {100 * within:.0f}% of pairs"
    )
    typer.echo(
        f"{what} on {tgt.name}: {s.count} measurements in {s.seconds:.0f} s ({s.refused} "
        f"refused as too noisy); median {s.median_ms():.3f} ms, p10-p90 "
        f"{s.relative_quantile(0.1):.2f}-{s.relative_quantile(0.9):.2f}x of a network's "
        f"median; {agree}"
    )
    if math.isnan(within):  # no network was measured twice
        verdict = "too few measurements to judge: measure for longer"
    elif within >= 0.95:
        verdict = "steady enough to validate a predictor at +-10%"
    else:
        verdict = (
            "too noisy to validate a predictor at +-10% (that needs >= 95%): other "
            "work on this machine, or its neighbours, slow it down unevenly"
        )
    typer.echo(verdict)


@handles_bad_input
@takes_target(cuda=False, measures=False)
def report_cmd(
    space: str = SPACE,
    db: str = DB,
    resolution: int | None = RESOLUTION,
    fingerprint_key: str | None = FINGERPRINT,
    out: str | None = typer.Option(
        None, "--out", help="HTML file to write (default: latency-<space>.html)."
    ),
    plotlyjs: str = PLOTLYJS_OPTION,
    *,
    tgt: Target,
) -> None:
    """Write measured against predicted latency of the stored calibration and validation
    models as one offline HTML page (plotly), with the +-10% band."""
    from nas.latency.lut import LatencyTable
    from nas.latency.workflow import resolve_fingerprint, stored_predictions
    from nas.report.document import page, write_page
    from nas.report.latency import latency_figure, latency_summary

    sp = space_of(space, resolution)
    tab = LatencyTable(db)
    fp = resolve_fingerprint(tab, tgt, fingerprint_key)
    points = stored_predictions(tab, tgt, sp.name, fingerprint_key=fp.key)
    summary = latency_summary(points["validation"])
    body = latency_figure(points).to_html(full_html=False, include_plotlyjs=False)
    path = Path(out or f"latency-{sp.name}.html")
    title = f"nas latency: {sp.name} on {fp.describe()}"
    write_page(path, page(title, summary, body, plotlyjs=plotlyjs), plotlyjs=plotlyjs)
    typer.echo(f"{sp.name} on {tgt.name}: {summary} -> {path}")
