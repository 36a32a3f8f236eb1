"""Downloads that are whole, checked and resumable.

A file is fetched into ``<name>.part`` beside its destination and renamed into place
only once its checksum matches the published one, so a reader never sees a partial or
corrupted file under the real name. An interrupted download keeps its ``.part``; the
next attempt asks the server for the rest (HTTP Range) and starts over only if the
server ignores the range. Mirrors are tried in order.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import NasError, one_line

__all__ = ["RemoteFile", "checksum", "download"]

_CHUNK = 1 << 20
#: Seconds without a byte before a connection counts as dead (not the whole download's time).
_TIMEOUT_S = 60.0
#: (bytes done, bytes in all or 0 when the server does not say) after each chunk.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, where it is published, and its published checksum."""

    name: str
    urls: tuple[str, ...]
    md5: str
    size: int = 0

    def on(self, mirror: str | None) -> tuple[str, ...]:
        """The URLs to try: the mirror's copy alone when one is given."""
        return (mirror.rstrip("/") + "/" + self.name,) if mirror else self.urls


def checksum(path: Path) -> str:
    """The file's MD5, the checksum these data sets publish (integrity, not security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, part: Path, progress: Progress | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "nas"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if have and err.code == 416:  # the .part already holds every byte: check it
            return
        raise
    part.parent.mkdir(parents=True, exist_ok=True)  # only once there is something to keep
    with response:
        resumed = have and response.status == 206
        length = int(response.headers.get("Content-Length") or 0)
        done = have if resumed else 0
        total = done + length if length else 0
        with part.open("ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
    if length and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")


def download(
    remote: RemoteFile,
    dest: Path,
    *,
    mirror: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``remote`` to ``dest`` (resuming a ``.part`` left by an earlier attempt) and
    verify it; a file already there with the right checksum is kept as it is."""
    if dest.is_file() and checksum(dest) == remote.md5:
        return dest
    part = dest.with_name(dest.name + ".part")
    reasons: list[str] = []
    for url in remote.on(mirror):
        try:
            _fetch(url, part, progress)
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", None)  # URLError wraps the socket's error
            why = one_line(reason) if isinstance(reason, BaseException) else one_line(err)
            reasons.append(f"{url}: {why}")
            continue
        got = checksum(part)
        if got != remote.md5:
            part.unlink()
            raise NasError(
                f"checksum mismatch: got md5 {got}, published {remote.md5}; the download "
                "was refused and removed",
                field=remote.name,
                source=url,
            )
        os.replace(part, dest)
        return dest
    raise NasError(
        f"cannot download ({'; '.join(reasons)}); offline? put the published file there "
        f"yourself (what was fetched so far stays in {part.name} and is resumed)",
        field=remote.name,
        source=str(dest.parent),
    )
