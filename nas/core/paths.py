"""Where data sets live on this machine when a study does not say: the data root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["data_root"]


def data_root(environ: Mapping[str, str] | None = None) -> Path:
    """``NAS_DATA``, else ``$XDG_CACHE_HOME/nas/data``, else ``~/.cache/nas/data``.

    ``nas data fetch NAME`` downloads into ``<root>/NAME``; a study that names a data set
    without a path (and a tabular study without one) reads it from there.
    """
    env = os.environ if environ is None else environ
    if env.get("NAS_DATA"):
        return Path(env["NAS_DATA"]).expanduser()
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "nas" / "data"
