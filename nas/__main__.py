"""``python -m nas`` runs the command line."""

from nas.cli.app import app

app(prog_name="nas")
