"""The ``nas`` command line: a thin layer over the library (no logic of its own).

Bad input prints one line naming the file and field and exits 2; no traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nas.cli.data import data_app
from nas.cli.latency import latency_app
from nas.cli.proxies import proxies_cmd
from nas.cli.scale import scale_cmd
from nas.cli.search import dashboard_cmd, report_cmd, search_cmd
from nas.cli.supernet import supernet_app
from nas.cli.util import handles_bad_input, human, table

__all__ = ["app"]

app = typer.Typer(
    help="Hardware-aware neural architecture search over convolutional primitives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
space_app = typer.Typer(help="Inspect search spaces.", no_args_is_help=True)
arch_app = typer.Typer(help="Inspect architectures.", no_args_is_help=True)
app.add_typer(space_app, name="space")
app.add_typer(arch_app, name="arch")
app.add_typer(latency_app, name="latency")
app.add_typer(data_app, name="data")
app.add_typer(supernet_app, name="supernet")
app.command("search")(search_cmd)
app.command("dashboard")(dashboard_cmd)
app.command("report")(report_cmd)
app.command("scale")(scale_cmd)
app.command("proxies")(proxies_cmd)

# -- spaces ---------------------------------------------------------------------------


@space_app.command("list")
@handles_bad_input
def space_list() -> None:
    """List the bundled search spaces with their sizes."""
    from nas.space.searchspace import list_spaces, load_space, size

    rows = []
    for name in list_spaces():
        space = load_space(name)
        rows.append([name, len(space.stages), f"{size(space):.3e}", space.description])
    typer.echo(table(["space", "stages", "architectures", "description"], rows, right={1, 2}))


@space_app.command("show")
@handles_bad_input
def space_show(
    space: str = typer.Argument(..., help="Space name or path to a .toml file."),
) -> None:
    """Dimensions, choices and size of a search space."""
    from nas.space.searchspace import dimensions, load_space, size

    sp = load_space(space)
    typer.echo(f"space {sp.name}: {sp.description}")
    if sp.source:
        typer.echo(f"file: {sp.source}")
    rows = []
    for dim in dimensions(sp):
        when = f"{dim.field.split('.')[0]}.op in {{{', '.join(dim.ops)}}}" if dim.ops else ""
        rows.append([dim.label, ", ".join(map(str, dim.choices)), when])
    typer.echo(table(["dimension", "choices", "only when"], rows))
    n = size(sp)
    typer.echo(f"size: {n} distinct architectures (~{n:.3e})")


@space_app.command("sample")
@handles_bad_input
def space_sample(
    space: str = typer.Argument(..., help="Space name or path to a .toml file."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path | None = typer.Option(None, help="Write the architecture JSON here."),
) -> None:
    """Draw one random architecture from a space (uniform over each dimension)."""
    import numpy as np

    from nas.space.searchspace import load_space, sample_random

    arch = sample_random(load_space(space), np.random.default_rng(seed))
    text = arch.to_json(indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out} ({arch.short_id})")


# -- architectures --------------------------------------------------------------------


@arch_app.command("show")
@handles_bad_input
def arch_show(
    arch: str = typer.Argument(..., help="Architecture JSON file or reference name."),
    as_json: bool = typer.Option(False, "--json", help="Print the cost as JSON."),
) -> None:
    """Layer table with shapes, parameters, MACs and receptive field."""
    from nas.model.cost import cost
    from nas.model.reference import load_arch

    a = load_arch(arch)
    c = cost(a)
    if as_json:
        body = {
            "id": a.id,
            "params": c.params,
            "macs": c.macs,
            "flops": c.flops,
            "peak_activation_bytes": c.peak_activation_bytes(),
            "receptive_field": c.receptive_field,
            "layers": [vars(r) for r in c.layers],
        }
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(f"{a.name or '(unnamed)'}  id {a.short_id}")
    typer.echo(a.compact())
    rows = [
        [
            r.name,
            r.layer,
            "x".join(map(str, r.in_shape)),
            "x".join(map(str, r.out_shape)),
            r.params,
            r.macs,
            r.receptive_field,
        ]
        for r in c.layers
    ]
    headers = ["block", "layer", "input", "output", "params", "MACs", "RF"]
    typer.echo(table(headers, rows, right={4, 5, 6}))
    typer.echo(
        f"total: {c.params:,} params, {c.macs:,} MACs ({human(c.flops)} FLOPs), "
        f"peak activations {c.peak_activation_bytes() / 2**20:.2f} MiB (fp32, batch 1), "
        f"receptive field {c.receptive_field} px"
    )


# -- export ---------------------------------------------------------------------------


@app.command("export")
@handles_bad_input
def export_cmd(
    arch: str = typer.Argument(..., help="Architecture JSON file or reference name."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    name: str | None = typer.Option(None, help="File stem and model class name."),
    formats: str = typer.Option("py,pt,ts,onnx,json", "--formats", help="Comma-separated subset."),
    weights: Path | None = typer.Option(
        None, help="state_dict (.pt) to export instead of fresh weights."
    ),
    seed: int = typer.Option(0, help="Seed of the initial weights when --weights is not given."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write <name>.py (needs only torch), weights, TorchScript, ONNX and the JSON."""
    from nas.core.errors import NasError
    from nas.model.builder import check_fits, load_weights
    from nas.model.export import export
    from nas.model.reference import load_arch

    a = load_arch(arch)
    try:
        check_fits(a)
    except NasError as err:  # the architecture's file is where the size comes from
        raise err.at(source=arch) from None
    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    model = load_weights(a, weights) if weights is not None else None
    result = export(a, out, model=model, name=name, formats=fmts, overwrite=force, seed=seed)
    for fmt, path in result.paths.items():
        typer.echo(f"{fmt:5s} {path}")


def main() -> None:  # pragma: no cover - console entry point
    app()
