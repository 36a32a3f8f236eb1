"""Reference architectures shipped with the package (MobileNetV2, EfficientNet-B0)."""

from __future__ import annotations

from pathlib import Path

from nas.core.errors import NasError
from nas.model.arch import Architecture, load_architecture

__all__ = ["load_arch", "reference_names", "reference_path"]

_DIR = Path(__file__).resolve().parent


def reference_names() -> list[str]:
    return sorted(p.stem for p in _DIR.glob("*.json"))


def reference_path(name: str) -> Path:
    path = _DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(reference_names())
        raise NasError(f"no reference architecture {name!r} (known: {known})", field="arch")
    return path


def load_arch(spec: str | Path) -> Architecture:
    """An architecture file path, or the name of a reference architecture."""
    path = Path(spec)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise NasError("no such architecture file", source=str(path))
        return load_architecture(path)
    try:
        return load_architecture(reference_path(str(spec)))
    except NasError as err:
        raise NasError(f"{err.reason}; nor is it a file", field="arch") from None
