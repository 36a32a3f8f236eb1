"""Image classification data: one loader, seeded stratified splits, compact uint8 storage.

Every dataset becomes the same thing: a pool of uint8 images ``(N, C, H, W)`` with int64
labels, cut by ONE seeded permutation into train / val / test. Images stay uint8 (a
quarter of float32's memory, cheap to ship to Ray workers) and are normalised per batch
by :meth:`Dataset.normalise`, with mean/std measured on the train split only so that
nothing about val/test leaks into training.

Split policy (the same for every dataset): the pool is everything the files hold
(MNIST: every split present, ``train`` then ``t10k``; CIFAR: the five train batches then
the test batch), shuffled with ``torch.Generator().manual_seed(seed)``; ``limit`` keeps the
first ``limit`` shuffled samples; then a stratified cut gives ``round(n * test_fraction)``
test and ``round(n * val_fraction)`` val samples, the rest train. The official test
split is therefore NOT kept as ``test``: numbers are comparable across runs of this
tool, not with published CIFAR/MNIST test accuracies.

The pieces: ``dataset`` (the types), ``splits`` (the policy), ``sources`` (one reader
per file format).
"""

from __future__ import annotations

from pathlib import Path

from nas.core.errors import NasError
from nas.core.strict import fraction, integer
from nas.train.dataset import Dataset, Split
from nas.train.sources.cifar import read_cifar
from nas.train.sources.digits import read_digits
from nas.train.sources.imagefolder import read_imagefolder
from nas.train.sources.mnist import read_mnist
from nas.train.splits import assemble

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagefolder")


def load_dataset(
    name: str,
    *,
    path: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    limit: int | None = None,
    image_size: int = 64,
) -> Dataset:
    """Load ``name`` and split it (see the module docstring for the split policy).

    - ``digits``: scikit-learn's embedded 8x8 digits (no download, no ``path``).
    - ``mnist``, ``fashion-mnist``: IDX files (plain or ``.gz``) in the directory ``path``.

    Without ``path``, a data set ``nas data fetch`` knows is read from the data root
    (nas.core.paths.data_root), where that command puts it.
    - ``cifar10`` / ``cifar100``: the official python-pickle batches in ``path``. They are
      unpickled with an unpickler that admits only numpy arrays, but still: only load
      files from a source you trust.
    - ``imagefolder``: one subfolder per class under ``path``, every image resized
      (squashed, antialiased bilinear) to ``image_size`` x ``image_size`` RGB. Needs
      torchvision; everything is held in memory, so this is for small folders.

    Bad input raises :class:`NasError` naming the file and field.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in DATASETS:
        raise NasError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})", field="dataset")
    fraction(val_fraction, "val_fraction")
    fraction(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1.0:
        raise NasError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}",
            field="val_fraction",
        )
    seed = integer(seed, "seed", minimum=None)
    limit = None if limit is None else integer(limit, "limit", minimum=1)

    if key == "digits":
        if path is not None:
            raise NasError(
                "digits is built into scikit-learn and takes no path",
                field="path",
                source=str(path),
            )
        x, y, num_classes = read_digits()
    else:
        root = _directory(path, key) if path is not None else _fetched(key)
        if key in ("mnist", "fashion-mnist"):
            x, y, num_classes = read_mnist(root)
        elif key in ("cifar10", "cifar100"):
            x, y, num_classes = read_cifar(root, key)
        else:
            size = integer(image_size, "image_size", minimum=1)
            x, y, num_classes = read_imagefolder(root, size)
    return assemble(key, x, y, num_classes, seed, val_fraction, test_fraction, limit)


def _fetched(name: str) -> Path:
    """The data root's copy of a data set that ``nas data fetch`` knows."""
    from nas.train.catalog import CATALOG, path_of

    if name not in CATALOG:  # imagefolder: only ever given by path
        return _directory(None, name)
    folder = path_of(name)
    if not folder.is_dir():
        raise NasError(
            f"{name} is not in the data root: run `nas data fetch {name}`, or give the "
            "folder of its files (--data-path)",
            field="path",
            source=str(folder),
        )
    return folder


def _directory(path: str | Path | None, name: str) -> Path:
    if path is None:
        raise NasError(f"{name} needs a path to its files", field="path")
    root = Path(path).expanduser()
    if not root.exists():
        raise NasError("does not exist", field="path", source=str(root))
    if not root.is_dir():
        raise NasError("is not a directory", field="path", source=str(root))
    return root
