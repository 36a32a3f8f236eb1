"""One way to read a TOML file named by path or by the name of a bundled file.

Studies and search spaces are both given either as a path (anything ending in
``.toml`` or holding a path separator) or as the name of a file shipped with the
package; both get the same errors for a missing, undecodable or malformed file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.bundled import bundled_tomls
from nas.core.errors import NasError

__all__ = ["TomlFile", "is_path", "load_toml"]


@dataclass(frozen=True)
class TomlFile:
    """A parsed TOML file and where it came from."""

    data: dict[str, Any]
    #: What errors name: the path as given, or the bundled file's location.
    source: str
    #: The bundled name, or the file's stem.
    name: str
    #: True when the file is one shipped with the package (by name or by its path).
    bundled: bool


def is_path(name_or_path: str | os.PathLike[str]) -> bool:
    """Whether the argument names a file rather than a bundled name."""
    text = os.fspath(name_or_path)
    return (
        isinstance(name_or_path, os.PathLike)
        or text.endswith(".toml")
        or "/" in text
        or os.sep in text
    )


def _parse(content: bytes, *, kind: str, source: str) -> dict[str, Any]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise NasError(f"{kind} file is not UTF-8 text", source=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise NasError(f"malformed TOML: {err}", source=source) from None


def load_toml(
    name_or_path: str | os.PathLike[str], *, folder: str, kind: str, field: str
) -> TomlFile:
    """Read ``name_or_path``: a path, or the name of ``<folder>/<name>.toml`` shipped with
    the package. ``kind`` names the file in errors ("study"), ``field`` the argument."""
    text = os.fspath(name_or_path)
    known = bundled_tomls(folder)
    if is_path(name_or_path):
        path = Path(text)
        try:
            content = path.read_bytes()
        except OSError as err:
            raise NasError(f"cannot read {kind} file: {err.strerror}", source=str(path)) from None
        shipped = {Path(str(f)).resolve() for f in known.values()}
        data = _parse(content, kind=kind, source=str(path))
        return TomlFile(data, str(path), path.stem, bundled=path.resolve() in shipped)
    if text not in known:
        raise NasError(
            f"unknown {kind} {text!r} (known: {', '.join(sorted(known)) or 'none'}; "
            "or give the path of a .toml file)",
            field=field,
        )
    entry = known[text]
    data = _parse(entry.read_bytes(), kind=kind, source=str(entry))
    return TomlFile(data, str(entry), text, bundled=True)
