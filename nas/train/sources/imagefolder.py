"""A folder of images, one subfolder per class, resized to one square size in memory.

torchvision decodes the images; it is imported only here, so the other sources work
without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nas.core.errors import NasError, one_line

__all__ = ["read_imagefolder"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what every torchvision decodes as one frame


def read_imagefolder(root: Path, image_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``root/<class>/**/<image>``; classes in sorted folder-name order, as torchvision."""
    try:
        from torchvision.io import ImageReadMode, decode_image, read_file
    except Exception as err:  # absent, or built for another torch: both fail here
        raise NasError(
            f"imagefolder needs torchvision, which does not import here "
            f"({one_line(err, named=True, limit=200)}); install the torchvision build matching "
            f"torch {torch.__version__}",
            field="dataset",
            source=str(root),
        ) from None
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise NasError(
            f"expected one subfolder per class (at least 2), found {len(classes)}",
            field="path",
            source=str(root),
        )
    xs, ys = [], []
    for label, folder in enumerate(classes):
        files = sorted(
            f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES
        )
        if not files:
            raise NasError(
                f"class folder has no images ({', '.join(_IMAGE_SUFFIXES)})",
                field="path",
                source=str(folder),
            )
        for file in files:
            try:
                img = decode_image(read_file(str(file)), mode=ImageReadMode.RGB)
            except Exception as err:
                raise NasError(
                    f"cannot decode image: {err}", field="image", source=str(file)
                ) from None
            resized = F.interpolate(
                img[None].to(torch.float32),
                size=(image_size, image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
            xs.append(resized.round_().clamp_(0, 255).to(torch.uint8).numpy())
            ys.append(label)
    return np.concatenate(xs), np.asarray(ys, dtype=np.int64), len(classes)
