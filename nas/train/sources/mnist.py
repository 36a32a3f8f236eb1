"""MNIST's IDX files (plain or gzip), every split present pooled.

The IDX header is checked against the data it announces, so a truncated or mislabelled
file is named before it can train anything.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from nas.core.errors import NasError

__all__ = ["read_mnist"]


def _read_bytes(file: Path) -> bytes:
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rb") as f:
                return f.read()
        return file.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise NasError(f"cannot read: {err}", field="file", source=str(file)) from None


def _read_idx(file: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: magic ``00 00 08 <ndim>``, big-endian uint32 dims."""
    raw = _read_bytes(file)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        got = raw[:4].hex() if len(raw) >= 4 else f"{len(raw)} bytes"
        raise NasError(
            f"bad magic number {got}, expected 0000080{ndim} (IDX, unsigned bytes, {ndim}-d)",
            field="magic",
            source=str(file),
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NasError(f"truncated header ({len(raw)} bytes)", field="dims", source=str(file))
    dims = [int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)]
    need = math.prod(dims)
    if len(raw) - header != need:
        raise NasError(
            f"holds {len(raw) - header} data bytes but dims {dims} need {need}",
            field="data",
            source=str(file),
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find(root: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for candidate in (root / stem, root / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_mnist(root: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Every MNIST split present in ``root`` (``train`` then ``t10k``), as one pool."""
    xs, ys = [], []
    for prefix in ("train", "t10k"):
        images = _find(root, (f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"))
        labels = _find(root, (f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"))
        if images is None and labels is None:
            continue
        if labels is None:
            raise NasError(
                f"missing {prefix}-labels-idx1-ubyte[.gz] beside {images.name}",  # type: ignore[union-attr]
                field="labels",
                source=str(root),
            )
        if images is None:
            raise NasError(
                f"missing {prefix}-images-idx3-ubyte[.gz] beside {labels.name}",
                field="images",
                source=str(root),
            )
        x = _read_idx(images, 3)
        y = _read_idx(labels, 1)
        if len(y) != len(x):
            raise NasError(
                f"{len(y)} labels but {images.name} holds {len(x)} images",
                field="count",
                source=str(labels),
            )
        if x.shape[1] != x.shape[2]:
            raise NasError(
                f"images must be square, got {x.shape[1]}x{x.shape[2]}",
                field="dims",
                source=str(images),
            )
        if xs and x.shape[1:] != xs[0].shape[2:]:
            raise NasError(
                f"images are {x.shape[1]}x{x.shape[2]}, other split {xs[0].shape[2]}x{xs[0].shape[3]}",
                field="dims",
                source=str(images),
            )
        if len(y) and int(y.max()) > 9:
            raise NasError(
                f"label {int(y.max())} is not a digit 0..9", field="labels", source=str(labels)
            )
        xs.append(x[:, None])
        ys.append(y.astype(np.int64))
    if not xs:
        raise NasError(
            "no MNIST files: expected t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] "
            "(and/or the train-* pair)",
            field="path",
            source=str(root),
        )
    return np.concatenate(xs), np.concatenate(ys), 10
