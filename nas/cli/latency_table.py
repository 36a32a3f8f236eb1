"""``nas latency`` commands over a table's life: build, calibrate, validate, show, move.

Each step stores what it measures as it goes; the commands say how to continue.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nas.cli.latency_options import DB, FINGERPRINT, RESOLUTION, SPACE, space_of, takes_target
from nas.cli.util import BarProgress, handles_bad_input, table

if TYPE_CHECKING:
    from nas.latency.target import Target

__all__ = [
    "build_cmd",
    "calibrate_cmd",
    "export_cmd",
    "import_cmd",
    "show_cmd",
    "validate_cmd",
]


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

    sp = space_of(space, resolution)
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

    sp = space_of(space, resolution)
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

    sp = space_of(space, resolution)
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


@handles_bad_input
@takes_target(cuda=False, measures=False)
def export_cmd(
    out: Path = typer.Argument(..., help="File to write (gzip JSON)."),
    db: str = DB,
    fingerprint_key: str | None = FINGERPRINT,
    *,
    tgt: Target,
) -> None:
    """Write one table (one fingerprint) to a single file."""
    from nas.latency.lut import LatencyTable
    from nas.latency.transport import export_table
    from nas.latency.workflow import resolve_fingerprint

    tab = LatencyTable(db)
    fp = resolve_fingerprint(tab, tgt, fingerprint_key)
    counts = export_table(tab, fp.key, out)
    typer.echo(f"wrote {out}: table {fp.key} ({fp.describe()}), {counts['entries']} units")


@handles_bad_input
def import_cmd(
    file: Path = typer.Argument(..., help="File written by `nas latency export`."),
    db: str = DB,
) -> None:
    """Merge a table file into a database (existing rows are kept)."""
    from nas.latency.lut import LatencyTable
    from nas.latency.transport import import_table

    fp, counts = import_table(LatencyTable(db), file)
    typer.echo(
        f"imported table {fp.key} ({fp.describe()}): "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
