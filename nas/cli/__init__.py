"""The ``nas`` command line: a thin layer over the library."""

from nas.cli.app import app

__all__ = ["app"]
