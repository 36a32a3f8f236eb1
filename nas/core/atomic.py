"""Files written whole or not at all: a reader (a browser reloading a report, a script
reading front.json) never sees half a file, and an interrupted write leaves no partial
file beside it.

Each write goes through its own temporary file (a unique name in the target's folder,
so the rename stays on one file system): two writers of one file (``report --watch``
beside ``--live-report``) never write into each other's temporary file; the last
rename wins whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_bytes", "write_text", "write_with"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = _umask()


def write_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Let ``write`` fill a uniquely named temporary file beside ``path`` (a serialiser
    that takes a file, such as ``torch.save``), then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a written file is a normal file
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a uniquely named temporary file renamed over it."""
    write_with(path, lambda f: f.write(data))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed over it."""
    write_bytes(path, text.encode("utf-8"))
