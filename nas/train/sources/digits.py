"""scikit-learn's embedded 8x8 digits: no download, a dataset for quick checks."""

from __future__ import annotations

import numpy as np

from nas.core.errors import NasError

__all__ = ["read_digits"]


def read_digits() -> tuple[np.ndarray, np.ndarray, int]:
    """sklearn's 8x8 digits (values 0..16) scaled to 0..255 like every other source."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise NasError(
            "digits needs scikit-learn (pip install 'nas[data]')", field="dataset", source="digits"
        ) from None
    images, labels = load_digits(return_X_y=True)
    x = np.rint(images * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    return x, labels.astype(np.int64), 10
