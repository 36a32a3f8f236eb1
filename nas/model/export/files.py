"""All-or-nothing placement of an export's files: staged beside, then moved in.

Files are written into a scratch directory on the same file system and renamed onto
their targets only when every one is good; a failure while moving puts back what was
there, so a failed export never leaves half a model behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from nas.core.errors import NasError

__all__ = ["commit", "exists_error", "make_tempdir"]


def make_tempdir(out_dir: Path, name: str) -> Path:
    """A scratch directory on the same file system as ``out_dir`` (so moves are renames):
    next to it, or hidden inside it when its parent is not writable."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".export", dir=out_dir.parent))
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".export", dir=out_dir))


def commit(
    staged: Mapping[str, Path], targets: Mapping[str, Path], scratch: Path, *, overwrite: bool
) -> None:
    """Move staged files onto their targets; on any failure put everything back as it was."""
    backups = scratch / "replaced"
    done: list[tuple[Path, Path | None, bool]] = []
    try:
        for fmt, src in staged.items():
            target = targets[fmt]
            backup = None
            if os.path.lexists(target):
                if not overwrite:  # appeared while we were exporting
                    raise exists_error(target)
                backups.mkdir(exist_ok=True)
                backup = backups / target.name
                os.replace(target, backup)
            done.append((target, backup, False))
            os.replace(src, target)
            done[-1] = (target, backup, True)
    except BaseException:
        for target, backup, placed in reversed(done):
            with contextlib.suppress(OSError):
                if placed:
                    target.unlink(missing_ok=True)
                if backup is not None:
                    os.replace(backup, target)
        raise


def exists_error(path: Path) -> NasError:
    return NasError("already exists; pass overwrite=True to replace it", field=str(path))
