"""``nas latency ...``: build, calibrate, validate, predict, measure, move tables."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from nas.cli.util import PLOTLYJS_OPTION, BarProgress, handles_bad_input, table
from nas.latency.runtimes import DTYPES, TARGETS

if TYPE_CHECKING:
    from nas.latency.target import Target

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["latency_app"]

latency_app = typer.Typer(
    help="Hardware latency: lookup tables, predictor, measurement.", no_args_is_help=True
)

DB = typer.Option(
    "sqlite:///nas_latency.db", "--db", help="SQLAlchemy URL of the latency database."
)
TARGET = typer.Option("cpu", "--target", help=" | ".join(TARGETS))
THREADS = typer.Option(None, "--threads", help="Runtime threads (default 1).")
BATCH = typer.Option(None, "--batch", help="Batch size (default 1).")
DTYPE = typer.Option(None, "--dtype", help=" | ".join(DTYPES))
AMP = typer.Option(None, "--amp/--no-amp", help="CUDA autocast.")
CHANNELS_LAST = typer.Option(None, "--channels-last/--no-channels-last", help="CUDA NHWC.")
SPACE = typer.Option(..., "--space", help="Space name or .toml path.")
RESOLUTION = typer.Option(None, "--resolution", help="Fix the space's input resolution.")
FINGERPRINT = typer.Option(
    None, "--fingerprint", help="Use the table with this key (another machine's)."
)


_TARGET_OPTIONS = {  # name: (annotation, typer option)
    "target": (str, TARGET),
    "threads": (int | None, THREADS),
    "batch": (int | None, BATCH),
    "dtype": (str | None, DTYPE),
    "amp": (bool | None, AMP),
    "channels_last": (bool | None, CHANNELS_LAST),
}


def takes_target(*, cuda: bool = True) -> Callable[[F], F]:
    """Give a command the target options (``--target --threads --batch --dtype``, and
    ``--amp --channels-last`` when ``cuda``) and hand it the parsed target as ``tgt``:
    one definition for every ``nas latency`` command."""
    names = [n for n in _TARGET_OPTIONS if cuda or n not in ("amp", "channels_last")]

    def deco(fn: F) -> F:
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "tgt"]
        added = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
            for n, (ann, opt) in _TARGET_OPTIONS.items()
            if n in names
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            from nas.latency.target import parse_target

            opts = {n: kwargs.pop(n) for n in names}
            kwargs["tgt"] = parse_target(opts.pop("target"), **opts)
            return fn(**kwargs)

        wrapper.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {
            **{k: v for k, v in fn.__annotations__.items() if k != "tgt"},
            **{p.name: p.annotation for p in added},
        }
        return wrapper  # type: ignore[return-value]

    return deco


def _space(name: str, resolution: int | None):
    from nas.space.searchspace import load_space

    space = load_space(name)
    if resolution is not None:
        space = space.with_data(resolution=resolution)
        space = dataclasses.replace(space, name=f"{space.name}@{resolution}")
    return space


@latency_app.command("build")
@handles_bad_input
@takes_target()
def build_cmd(
    space: str = SPACE,
    db: str = DB,
    resolution: int | None = RESOLUTION,
    calibrate_n: int | None = typer.Option(
        None, "--calibrate", help="Whole models measured to calibrate (default 150; 0: skip)."
    ),
    seed: int = typer.Option(0, help="Seed of the calibration architectures."),
    *,
    tgt: Target,
) -> None:
    """Measure every op configuration of a space the table lacks, then calibrate.

    Incremental and resumable: kill it and run it again, it continues.
    """
    from nas.latency.lut import LatencyTable
    from nas.latency.workflow import CALIBRATION_MODELS, build_table, calibrate

    sp = _space(space, resolution)
    tab = LatencyTable(db)
    calibrate_n = CALIBRATION_MODELS if calibrate_n is None else calibrate_n
    try:
        with BarProgress() as progress:
            report = build_table(sp, tgt, tab, progress=progress)
    except KeyboardInterrupt:  # every unit is committed as it is measured
        typer.echo(
            f"interrupted: the units measured so far are stored in {db}; the same "
            "command continues from there",
            err=True,
        )
        raise typer.Exit(130) from None
    typer.echo(
        f"table {report.fingerprint}: {report.units} units ({report.figures} figures), "
        f"{report.already} were there, measured {report.measured} in {report.seconds:.0f} s"
    )
    if report.noisy:
        typer.echo(
            f"error: {len(report.noisy)} figure(s) could not be measured quietly (first: "
            f"{report.noisy[0]}); run the same command again on a quieter machine",
            err=True,
        )
        raise typer.Exit(1)
    if calibrate_n > 0:
        with BarProgress() as progress:
            cal = calibrate(sp, tgt, tab, n=calibrate_n, seed=seed, progress=progress)
        _print_calibration(cal)


@latency_app.command("calibrate")
@handles_bad_input
@takes_target()
def calibrate_cmd(
    space: str = SPACE,
    db: str = DB,
    resolution: int | None = RESOLUTION,
    n: int | None = typer.Option(None, "--n", help="Whole models to measure (default 150)."),
    seed: int = typer.Option(0, help="Seed of the calibration architectures."),
    fresh: bool = typer.Option(
        True, "--fresh/--reuse", help="Measure new models (default) or reuse stored ones."
    ),
    *,
    tgt: Target,
) -> None:
    """Refit the table's correction for a space on freshly measured whole models (seconds)."""
    from nas.latency.lut import LatencyTable
    from nas.latency.workflow import CALIBRATION_MODELS, calibrate

    sp = _space(space, resolution)
    n = CALIBRATION_MODELS if n is None else n
    with BarProgress() as progress:
        cal = calibrate(sp, tgt, LatencyTable(db), n=n, seed=seed, fresh=fresh, progress=progress)
    _print_calibration(cal)


def _print_calibration(cal) -> None:
    typer.echo(
        f"calibration on {cal.n_models} models: ms = {cal.scale:.4f} * table + "
        + (f"{cal.cold_scale:.4f} * cold table + " if cal.cold_scale else "")
        + f"{cal.per_unit * 1e3:.1f} us * units + "
        + (f"{cal.io_scale * 1e3:.1f} us * M elements in/out + " if cal.io_scale else "")
        + (
            f"{cal.weights_scale * 1e3:.1f} us * MB weights read + "
            f"{cal.weights_sq_scale * 1e3:.2f} us * MB^2 + "
            if cal.weights_scale or cal.weights_sq_scale
            else ""
        )
        + f"{cal.offset * 1e3:.1f} us "
        f"(fit error {100 * cal.fit_mape:.1f}%)"
    )


@latency_app.command("validate")
@handles_bad_input
@takes_target()
def validate_cmd(
    space: str = SPACE,
    n: int = typer.Option(200, "--n", help="Fresh architectures to measure."),
    db: str = DB,
    resolution: int | None = RESOLUTION,
    seed: int = typer.Option(0, help="Seed of the validation architectures."),
    fresh: bool = typer.Option(
        True, "--fresh/--reuse", help="Measure the models now (default) or reuse stored ones."
    ),
    repeat: int = typer.Option(
        50, "--repeat", help="Models timed once more: how well the machine repeats itself."
    ),
    passes: int | None = typer.Option(
        None, "--passes", help="Times each model is measured, minutes apart (1-3, default 2)."
    ),
    *,
    tgt: Target,
) -> None:
    """Predict and measure fresh architectures; print and store the accuracy."""
    from nas.latency.lut import LatencyTable
    from nas.latency.workflow import VALIDATION_PASSES, validate

    sp = _space(space, resolution)
    passes = VALIDATION_PASSES if passes is None else passes
    with BarProgress() as progress:
        r = validate(
            sp,
            tgt,
            LatencyTable(db),
            n=n,
            seed=seed,
            fresh=fresh,
            repeat=repeat,
            passes=passes,
            progress=progress,
        )
    timed = "" if r.passes == 1 else f" (each measured {r.passes} times)"
    typer.echo(
        f"{r.space} on {tgt.name}: {r.n} fresh architectures{timed}; within +-5%: {100 * r.within_5:.1f}%, "
        f"within +-10%: {100 * r.within_10:.1f}%, MAPE {100 * r.mape:.2f}%, "
        f"Kendall tau {r.kendall_tau:.3f}; prediction {r.predict_us:.0f} us vs measurement "
        f"{r.measure_s:.3f} s ({r.speedup:,.0f}x cheaper); machine speed vs. table build: "
        f"{r.drift:.2f}x canary time"
    )
    if r.unanchored_within_10 is not None:
        typer.echo(
            f"machine speed against the space's anchors while timing: {r.speed_low:.2f}-"
            f"{r.speed_high:.2f}x; without the anchors: within +-10%: "
            f"{100 * r.unanchored_within_10:.1f}%, Kendall tau {r.unanchored_kendall_tau:.3f}"
        )
    if r.repeat_n:
        typer.echo(
            f"the measurement itself: {r.repeat_n} models timed again, within +-5%: "
            f"{100 * r.repeat_within_5:.1f}%, within +-10%: {100 * r.repeat_within_10:.1f}% "
            "of their first figure"
            + (
                f", Kendall tau {r.repeat_kendall_tau:.3f} against it (the prediction's on "
                f"these models: {r.repeat_prediction_tau:.3f})"
                if r.repeat_kendall_tau is not None
                else ""
            )
            + "; no prediction can be checked more tightly"
        )


@latency_app.command("predict")
@handles_bad_input
@takes_target(cuda=False)
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


@latency_app.command("measure")
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


@latency_app.command("noise")
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
        sp = _space(space, resolution)
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


@latency_app.command("report")
@handles_bad_input
@takes_target(cuda=False)
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
    from nas.report.page import latency_figure, latency_summary, page, write_page

    sp = _space(space, resolution)
    tab = LatencyTable(db)
    fp = resolve_fingerprint(tab, tgt, fingerprint_key)
    points = stored_predictions(tab, tgt, sp.name, fingerprint_key=fp.key)
    summary = latency_summary(points["validation"])
    body = latency_figure(points).to_html(full_html=False, include_plotlyjs=False)
    path = Path(out or f"latency-{sp.name}.html")
    title = f"nas latency: {sp.name} on {fp.describe()}"
    write_page(path, page(title, summary, body, plotlyjs=plotlyjs), plotlyjs=plotlyjs)
    typer.echo(f"{sp.name} on {tgt.name}: {summary} -> {path}")


@latency_app.command("show")
@handles_bad_input
def show_cmd(db: str = DB) -> None:
    """The tables in a database: fingerprints, entries, calibration, validations."""
    from nas.latency.lut import LatencyTable

    tab = LatencyTable(db)
    rows = []
    for fp in tab.fingerprints():
        cal = ", ".join(sorted(tab.calibrations(fp.key)))
        vals = tab.validations(fp.key)
        last = ", ".join(
            f"{v['space']}: {100 * v['within_10']:.0f}% in 10%, tau {v['kendall_tau']:.2f}"
            for v in vals[-3:]
        )
        rows.append([fp.key, fp.describe(), len(tab.entries(fp.key)), cal or "-", last])
    typer.echo(
        table(["fingerprint", "setting", "units", "calibrated", "validations"], rows, right={2})
    )


@latency_app.command("export")
@handles_bad_input
@takes_target(cuda=False)
def export_cmd(
    out: Path = typer.Argument(..., help="File to write (gzip JSON)."),
    db: str = DB,
    fingerprint_key: str | None = FINGERPRINT,
    *,
    tgt: Target,
) -> None:
    """Write one table (one fingerprint) to a single file."""
    from nas.latency.lut import LatencyTable, export_table
    from nas.latency.workflow import resolve_fingerprint

    tab = LatencyTable(db)
    fp = resolve_fingerprint(tab, tgt, fingerprint_key)
    counts = export_table(tab, fp.key, out)
    typer.echo(f"wrote {out}: table {fp.key} ({fp.describe()}), {counts['entries']} units")


@latency_app.command("import")
@handles_bad_input
def import_cmd(
    file: Path = typer.Argument(..., help="File written by `nas latency export`."),
    db: str = DB,
) -> None:
    """Merge a table file into a database (existing rows are kept)."""
    from nas.latency.lut import LatencyTable, import_table

    fp, counts = import_table(LatencyTable(db), file)
    typer.echo(
        f"imported table {fp.key} ({fp.describe()}): "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
