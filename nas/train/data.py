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
"""

from __future__ import annotations

import gzip
import math
import numbers
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.core.errors import NasError

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]

DATASETS = ("digits", "mnist", "cifar10", "cifar100", "imagefolder")

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what every torchvision decodes as one frame


@dataclass(frozen=True, eq=False)
class Split:
    """One split. ``indices`` are positions in the dataset's pool (file order), kept so
    that splits can be checked for overlap and traced back to the source files.

    ``eq=False``: comparing tensors with ``==`` is elementwise, not a bool.
    """

    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)
    indices: torch.Tensor | None = None  # int64 (N,), position in the pool

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise TypeError(
                f"Split.x must be uint8 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise TypeError(
                f"Split.y must be int64 ({self.x.shape[0]},), got {self.y.dtype} {tuple(self.y.shape)}"
            )
        if self.indices is not None and self.indices.shape != self.y.shape:
            raise TypeError("Split.indices must have one entry per sample")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Three splits plus what a model needs to know: classes, channels, native size, and
    the train-split statistics used by :meth:`normalise`."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    resolution: int  # native H (= W)
    mean: tuple[float, ...]  # per channel, of train.x / 255
    std: tuple[float, ...]
    _affine: dict[Any, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def normalise(self, x_uint8: torch.Tensor, resolution: int | None = None) -> torch.Tensor:
        """float32 ``(x/255 - mean)/std``, resized (bilinear, align_corners=False) when
        ``resolution`` differs from the native one.

        Takes uint8 only, so a batch cannot be normalised twice by mistake. Works on the
        tensor's device; the per-channel constants are cached per device.
        """
        if x_uint8.dtype != torch.uint8:
            raise TypeError(f"normalise() takes uint8 images, got {x_uint8.dtype}")
        single = x_uint8.dim() == 3
        x = x_uint8.unsqueeze(0) if single else x_uint8
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected (N, {self.in_channels}, H, W) images, got {tuple(x_uint8.shape)}"
            )
        scale, shift = self._constants(x.device)
        out = torch.addcmul(shift, x.to(torch.float32), scale)  # (x/255 - mean)/std
        if resolution is not None and (resolution != out.shape[-2] or resolution != out.shape[-1]):
            if resolution < 1:
                raise ValueError(f"resolution must be positive, got {resolution}")
            out = F.interpolate(
                out, size=(resolution, resolution), mode="bilinear", align_corners=False
            )
        return out.squeeze(0) if single else out

    def __getstate__(self) -> dict[str, Any]:
        # The per-device cache may hold CUDA tensors: never ship it to another process.
        return {**self.__dict__, "_affine": {}}

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._affine:
            mean = torch.tensor(self.mean, dtype=torch.float64).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float64).view(1, -1, 1, 1)
            scale = (1.0 / (255.0 * std)).to(torch.float32)
            shift = (-mean / std).to(torch.float32)
            self._affine[key] = (scale.to(device), shift.to(device))
        return self._affine[key]


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
    - ``mnist``: IDX files (plain or ``.gz``) in the directory ``path``.
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
    _check_fraction(val_fraction, "val_fraction")
    _check_fraction(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1.0:
        raise NasError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}",
            field="val_fraction",
        )
    seed = _integer(seed, "seed", minimum=None)
    limit = None if limit is None else _integer(limit, "limit", minimum=1)

    if key == "digits":
        if path is not None:
            raise NasError(
                "digits is built into scikit-learn and takes no path",
                field="path",
                source=str(path),
            )
        x, y, num_classes = _digits()
    else:
        root = _directory(path, key)
        if key == "mnist":
            x, y, num_classes = _mnist(root)
        elif key in ("cifar10", "cifar100"):
            x, y, num_classes = _cifar(root, key)
        else:
            size = _integer(image_size, "image_size", minimum=1)
            x, y, num_classes = _imagefolder(root, size)
    return _assemble(key, x, y, num_classes, seed, val_fraction, test_fraction, limit)


# --------------------------------------------------------------------------- splitting


def _integer(value: object, name: str, *, minimum: int | None) -> int:
    """numpy integers are welcome, bools and floats are not."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or (minimum is not None and int(value) < minimum):  # type: ignore[arg-type]
        what = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise NasError(f"must be {what}, got {value!r}", field=name)
    return int(value)  # type: ignore[arg-type]


def _check_fraction(value: float, name: str) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not 0.0 <= value < 1.0:
        raise NasError(f"must be a number in [0, 1), got {value!r}", field=name)


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def _split_positions(
    y: torch.Tensor, seed: int, val_fraction: float, test_fraction: float, limit: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pool indices of train, val, test: one seeded permutation, then a stratified cut.

    Each sample gets the key ``(rank within its class in shuffled order + 0.5) / class
    size``; sorting by that key interleaves the classes proportionally, so any prefix
    (the test part, then the val part) has every class in its pool share.
    """
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    if limit is not None:
        order = order[:limit]
    n = len(order)
    labels = y[order]
    sorted_labels, by_class = torch.sort(labels, stable=True)
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.int64)
    rank[by_class] = torch.arange(n) - starts[sorted_labels]
    quantile = (rank.to(torch.float64) + 0.5) / counts[labels].to(torch.float64)
    spread = torch.sort(quantile, stable=True).indices
    n_test = _round(n * test_fraction)
    n_val = _round(n * val_fraction)
    if n - n_test - n_val < 1:
        raise NasError(
            f"{n} samples leave none for training after val/test",
            field="limit" if limit else "val_fraction",
        )
    parts = spread[n_test + n_val :], spread[n_test : n_test + n_val], spread[:n_test]
    # Each split keeps the shuffled order, so its classes are not sorted in blocks.
    return tuple(order[torch.sort(p).values] for p in parts)  # type: ignore[return-value]


def _assemble(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    limit: int | None,
) -> Dataset:
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    splits = [
        Split(x=xt[i], y=yt[i], indices=i)
        for i in _split_positions(yt, seed, val_fraction, test_fraction, limit)
    ]
    mean, std = _channel_stats(splits[0].x)
    return Dataset(
        name=name,
        train=splits[0],
        val=splits[1],
        test=splits[2],
        num_classes=num_classes,
        in_channels=int(xt.shape[1]),
        resolution=int(xt.shape[2]),
        mean=mean,
        std=std,
    )


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of x/255 (population std), from exact int64 sums in chunks so
    that CIFAR-sized data never needs a float64 copy."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.int64)
    squares = torch.zeros(c, dtype=torch.int64)
    for chunk in torch.split(x, 2048):
        v = chunk.to(torch.int64)
        total += v.sum(dim=(0, 2, 3))
        squares += (v * v).sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total.to(torch.float64) / count
    var = (squares.to(torch.float64) / count - mean * mean).clamp_(min=0.0)
    std = var.sqrt() / 255.0
    # A constant channel has std 0: divide by 1 instead of by 0.
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple((mean / 255.0).tolist()), tuple(std.tolist())


# --------------------------------------------------------------------------- sources


def _directory(path: str | Path | None, name: str) -> Path:
    if path is None:
        raise NasError(f"{name} needs a path to its files", field="path")
    root = Path(path).expanduser()
    if not root.exists():
        raise NasError("does not exist", field="path", source=str(root))
    if not root.is_dir():
        raise NasError("is not a directory", field="path", source=str(root))
    return root


def _digits() -> tuple[np.ndarray, np.ndarray, int]:
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


def _mnist(root: Path) -> tuple[np.ndarray, np.ndarray, int]:
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


def _cifar(root: Path, name: str) -> tuple[np.ndarray, np.ndarray, int]:
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


def _imagefolder(root: Path, image_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``root/<class>/**/<image>``; classes in sorted folder-name order, as torchvision."""
    try:
        from torchvision.io import ImageReadMode, decode_image, read_file
    except Exception as err:  # absent, or built for another torch: both fail here
        first = str(err).splitlines()[0][:200] if str(err) else ""
        raise NasError(
            f"imagefolder needs torchvision, which does not import here "
            f"({type(err).__name__}: {first}); install the torchvision build matching "
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
