"""``python -m nas`` runs the command line."""

from nas.cli import app

app(prog_name="nas")
