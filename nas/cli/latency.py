"""``nas latency ...``: build, calibrate, validate, predict, measure, move tables.

The commands live in ``latency_table`` (a table's life) and ``latency_use`` (what uses a
table or the harness); they are registered here, in the order ``--help`` lists them.
"""

from __future__ import annotations

import typer

from nas.cli import latency_table as table
from nas.cli import latency_use as use

__all__ = ["latency_app"]

latency_app = typer.Typer(
    help="Hardware latency: lookup tables, predictor, measurement.", no_args_is_help=True
)

for name, command in (
    ("build", table.build_cmd),
    ("calibrate", table.calibrate_cmd),
    ("validate", table.validate_cmd),
    ("predict", use.predict_cmd),
    ("measure", use.measure_cmd),
    ("noise", use.noise_cmd),
    ("report", use.report_cmd),
    ("show", table.show_cmd),
    ("export", table.export_cmd),
    ("import", table.import_cmd),
):
    latency_app.command(name)(command)
