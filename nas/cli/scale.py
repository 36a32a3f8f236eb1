"""``nas scale``: compound scaling of a found network into a family."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from nas.cli.util import handles_bad_input, table

if TYPE_CHECKING:
    from nas.model.arch import Architecture
    from nas.scale.family import Family
    from nas.search.config import StudyConfig

__all__ = ["scale_cmd"]


@handles_bad_input
def scale_cmd(
    source: str = typer.Argument(
        ...,
        help="A searched study (its most accurate winner is scaled), an architecture "
        ".json file, or a reference architecture name.",
    ),
    study: str = typer.Option(
        "digits", "--study", help="Data, recipe and storage for an architecture SOURCE."
    ),
    mode: str = typer.Option("flops", "--mode", help="flops | latency: what doubles per step."),
    phis: int = typer.Option(2, "--phis", help="Family members phi = 0..N."),
    max_points: int = typer.Option(8, "--max-points", help="Grid points trained at most."),
    step: float = typer.Option(0.05, "--step", help="Grid step of alpha, beta, gamma."),
    hi: float = typer.Option(1.5, "--hi", help="Largest alpha, beta, gamma on the grid."),
    tolerance: float = typer.Option(0.1, "--tolerance", help="Of the 2x per-step constraint."),
    resolution_multiple: int = typer.Option(1, "--resolution-multiple"),
    resolution_steps: int = typer.Option(
        6, "--resolution-steps", help="Multiples a member's resolution may move to hit 2x."
    ),
    train: bool = typer.Option(True, "--train/--no-train", help="Train the family members."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs per trial."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna/evaluations storage URL."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
    data_path: str | None = typer.Option(None, "--data-path", help="Dataset directory."),
    latency_db: str | None = typer.Option(None, "--latency-db", help="Latency table URL."),
    export_dir: str | None = typer.Option(None, "--export-dir", help="Where the family goes."),
) -> None:
    """Grow a network into a family by compound scaling (EfficientNet's grid search)."""
    from nas.report.page import report_path, write_report
    from nas.scale.family import ScaleConfig, scale_family

    cfg = ScaleConfig(
        mode=mode,
        phis=phis,
        step=step,
        hi=hi,
        tolerance=tolerance,
        max_points=max_points,
        resolution_multiple=resolution_multiple,
        resolution_steps=resolution_steps,
        train=train,
    )
    overrides = {
        "train.epochs": epochs,
        "search.storage": storage,
        "search.ray_address": address,
        "data.path": data_path,
        "latency.db": latency_db,
        "export_dir": export_dir,
    }
    base, cfg_study = _base_and_study(source, study, overrides)
    try:
        family = scale_family(cfg_study, base, cfg, note=lambda m: typer.echo(m, err=True))
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: the trainings that finished are stored in "
            f"{cfg_study.search.storage}; `nas scale` again reuses them",
            err=True,
        )
        raise typer.Exit(130) from None
    _print_family(family)
    write_report(cfg_study)
    typer.echo(f"report: {report_path(cfg_study)}")


def _base_and_study(
    source: str, study: str, overrides: dict[str, Any]
) -> tuple[Architecture, StudyConfig]:
    """The network to scale and the study whose data and recipe train it: an
    architecture SOURCE with ``--study``, or a searched study's most accurate winner."""
    from nas.core.errors import NasError
    from nas.model.reference import load_arch, reference_names
    from nas.search.config import load_study
    from nas.search.confirm import final_evaluations
    from nas.search.results import EvaluationStore
    from nas.search.selection import winners

    is_arch = source.endswith(".json") or source in reference_names() or Path(source).is_file()
    if is_arch and not source.endswith(".toml"):
        return load_arch(source), load_study(study, overrides)
    cfg_study = load_study(source, overrides)
    store = EvaluationStore(cfg_study.search.storage)
    found = winners(
        cfg_study,
        final_evaluations(cfg_study, store, note=lambda m: typer.echo(m, err=True)),
    )
    if not found:
        raise NasError(
            f"study {cfg_study.name} has no trained winner in {cfg_study.search.storage}: "
            f"run `nas search {source}` first",
            field="study",
            source=cfg_study.source,
        )
    return max(found, key=lambda e: e.val_accuracy).arch, cfg_study


def _print_family(family: Family) -> None:
    """The chosen grid point and one row per member."""
    c = family.grid.best.coefficients
    typer.echo(
        f"study {family.study}: best grid point alpha {c.alpha:.2f} beta {c.beta:.2f} gamma "
        f"{c.gamma:.2f} of {len(family.grid.points)} trained; family in {family.seconds:.0f} s"
    )
    rows = []
    for r in family.rows():
        rows.append(
            [
                r["phi"],
                f"{r['effective_phi']:.3f}",
                f"{r['depth']:.2f}/{r['width']:.2f}/{r['resolution_multiplier']:.2f}",
                r["resolution"],
                f"{r['params']:,}",
                f"{r['macs']:,}",
                f"{r['predicted_ms']:.3f}",
                f"{r['measured_ms']:.3f}" if r.get("measured_ms") is not None else "-",
                f"{r['val_accuracy']:.4f}" if "val_accuracy" in r else "-",
                f"{r['test_accuracy']:.4f}" if "test_accuracy" in r else "-",
                r["export"],
            ]
        )
    headers = ["phi", "phi'", "d/w/r", "px", "params", "MACs", "pred ms", "meas ms"]
    headers += ["val acc", "test acc", "export"]
    typer.echo(table(headers, rows, right=set(range(1, 10))))
