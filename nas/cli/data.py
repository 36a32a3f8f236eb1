"""``nas data``: data sets by name - list, fetch, verify, path."""

from __future__ import annotations

from pathlib import Path

import typer

from nas.cli.util import handles_bad_input, human, table

__all__ = ["data_app"]

data_app = typer.Typer(
    help="Data sets by name: fetched into the data root (NAS_DATA, else ~/.cache/nas/data).",
    no_args_is_help=True,
)
ROOT_OPTION = typer.Option(
    None, "--root", help="Data root (default: NAS_DATA, else ~/.cache/nas/data)."
)


@data_app.command("list")
@handles_bad_input
def data_list(root: Path | None = ROOT_OPTION) -> None:
    """The data sets nas can fetch, their size, and whether they are under the data root."""
    from nas.train.catalog import CATALOG, verify

    rows = []
    for name, entry in CATALOG.items():
        checks = verify(name, root)
        state = "fetched" if all(c.ok for c in checks) else "-"
        rows.append([name, human(entry.size) + "B", state, entry.description])
    rows.append(["imagefolder", "-", "by path", "root/<class>/<image> folders (--data-path)"])
    typer.echo(table(["data set", "download", "state", "description"], rows, right={1}))


@data_app.command("fetch")
@handles_bad_input
def data_fetch(
    name: str = typer.Argument(..., help="Data set name (nas data list)."),
    root: Path | None = ROOT_OPTION,
    mirror: str | None = typer.Option(
        None, help="Base URL of a mirror holding the same files (checked the same way)."
    ),
) -> None:
    """Download NAME's published files (resuming a broken download), verify their
    checksums, unpack archives; nothing unverified is left under the real names."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from nas.train.catalog import fetch

    tasks: dict[str, object] = {}
    with Progress(
        "{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True
    ) as bar:

        def progress(file: str, done: int, total: int) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total or None)
            bar.update(tasks[file], completed=done)  # type: ignore[arg-type]

        folder = fetch(name, root, mirror=mirror, progress=progress)
    typer.echo(f"{name}: verified in {folder}")


@data_app.command("verify")
@handles_bad_input
def data_verify(
    name: str = typer.Argument(..., help="Data set name (nas data list)."),
    root: Path | None = ROOT_OPTION,
) -> None:
    """Check NAME's files under the data root against their published checksums
    (exit 1 when any is missing or differs)."""
    from nas.train.catalog import verify

    checks = verify(name, root)
    typer.echo(table(["file", "state"], [[c.file, c.reason] for c in checks]))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@data_app.command("path")
@handles_bad_input
def data_path(
    name: str = typer.Argument(..., help="Data set name (nas data list)."),
    root: Path | None = ROOT_OPTION,
) -> None:
    """Print the folder NAME is read from (a study's --data-path, or to place files by hand)."""
    from nas.train.catalog import path_of

    typer.echo(str(path_of(name, root)))
