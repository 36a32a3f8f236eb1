"""``nas supernet train``: a study's weight-sharing supernet, trained once and reused."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from nas.cli.util import handles_bad_input

__all__ = ["supernet_app"]

supernet_app = typer.Typer(help="Weight-sharing supernets of a study.", no_args_is_help=True)


@supernet_app.command("train")
@handles_bad_input
def train_cmd(
    study: str = typer.Argument(..., help="Study name (studies/) or .toml path."),
    epochs: int | None = typer.Option(None, "--epochs", help="Supernet training epochs."),
    workers: int = typer.Option(
        1, "--workers", help="Data-parallel workers on Ray Train (1: in this process)."
    ),
    data_path: str | None = typer.Option(None, "--data-path", help="Dataset directory."),
    space: str | None = typer.Option(None, "--space", help="Search space name or .toml path."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda | cuda:N | auto."),
    export_dir: str | None = typer.Option(None, "--export-dir", help="Where supernets go."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Use this checkpoint file instead of the study's own."
    ),
) -> None:
    """Train the study's supernet by its [supernet] recipe (sandwich rule, in-place
    distillation), resumably; a finished one for the same space, data and recipe is
    reused. Prints where it is stored."""
    from rich.progress import Progress

    from nas.search.config import load_study
    from nas.search.supernets import study_supernet

    cfg = load_study(
        study,
        {
            "supernet.epochs": epochs,
            "data.path": data_path,
            "space": space,
            "train.device": device,
            "export_dir": export_dir,
        },
    )
    start = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task(f"supernet of study {cfg.name}: steps", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = study_supernet(cfg, workers=workers, checkpoint=checkpoint, progress=progress)
    how = "reused" if result.reused else f"trained in {time.perf_counter() - start:.0f} s"
    typer.echo(f"supernet of {result.space.name} ({how}): {result.checkpoint}")
