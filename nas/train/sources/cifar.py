"""CIFAR-10/100's official python-pickle batches, read by an unpickler that admits
only numpy arrays (a crafted file cannot run code while loading)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import NasError

__all__ = ["read_cifar"]


class _ArraysOnly(pickle.Unpickler):
    """Admits only what CIFAR batches contain (numpy arrays, bytes), so a crafted file
    cannot name an arbitrary callable to run while loading."""

    _ALLOWED = frozenset(
        {
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # bytes pickled by Python 3 at protocol <= 2
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        # numpy 2 renamed numpy.core to numpy._core; files carry either spelling.
        canonical = module.replace("numpy.core", "numpy._core", 1)
        if (canonical, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if canonical.startswith("numpy._core") and not hasattr(np, "_core"):
            canonical = canonical.replace("numpy._core", "numpy.core", 1)
        return super().find_class(canonical, name)


def read_cifar(root: Path, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The official python batches; the extracted tarball folder is accepted too."""
    if name == "cifar10":
        files, label_key, num_classes, inner = (
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
            b"labels",
            10,
            "cifar-10-batches-py",
        )
    else:
        files, label_key, num_classes, inner = (
            ["train", "test"],
            b"fine_labels",
            100,
            "cifar-100-python",
        )
    if not (root / files[0]).is_file() and (root / inner / files[0]).is_file():
        root = root / inner
    xs, ys = [], []
    for file_name in files:
        file = root / file_name
        if not file.is_file():
            raise NasError(f"missing {name} batch file {file_name}", field="path", source=str(file))
        try:
            with file.open("rb") as f:
                batch = _ArraysOnly(f, encoding="bytes").load()
        except Exception as err:  # any unpickling failure is a bad file, not a bug
            raise NasError(f"cannot unpickle: {err}", field="file", source=str(file)) from None
        if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
            raise NasError(
                f"expected a dict with keys b'data' and {label_key!r}",
                field="keys",
                source=str(file),
            )
        data = batch[b"data"]
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3072
        ):
            got = (
                f"{data.dtype} {data.shape}"
                if isinstance(data, np.ndarray)
                else type(data).__name__
            )
            raise NasError(f"expected uint8 (N, 3072), got {got}", field="data", source=str(file))
        labels = np.asarray(batch[label_key])
        field_name = label_key.decode()
        if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise NasError(
                f"expected {data.shape[0]} integer labels, got shape {labels.shape}",
                field=field_name,
                source=str(file),
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise NasError(
                f"labels must be in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}",
                field=field_name,
                source=str(file),
            )
        # Rows are the R plane, then G, then B, each 32x32 row-major.
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels.astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys), num_classes
