"""Data sets by name: where each one's files are published, their checksums, and the
data root they are fetched into (``NAS_DATA``, else the user's cache folder).

A study names a data set (``[data] name = "mnist"``) and finds it under the data root;
``nas data fetch NAME`` puts it there. ``imagefolder`` has no published files: it is
always given by path.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nas.core.download import RemoteFile, checksum, download
from nas.core.errors import NasError, one_line
from nas.core.paths import data_root

__all__ = ["CATALOG", "Published", "fetch", "find", "path_of", "verify"]

_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_KRIZ = "https://www.cs.toronto.edu/~kriz/"


def _files(bases: tuple[str, ...], published: dict[str, tuple[str, int]]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, tuple(b + name for b in bases), md5, size)
        for name, (md5, size) in published.items()
    )


@dataclass(frozen=True)
class Published:
    """A data set's published files; ``archive`` ones are unpacked into ``unpacks_to``."""

    name: str
    #: Which loader of nas.train reads the folder.
    loader: str
    description: str
    files: tuple[RemoteFile, ...]
    #: For an archive: the folder it unpacks to (the loader reads it there).
    unpacks_to: str = ""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


CATALOG: dict[str, Published] = {
    p.name: p
    for p in (
        Published(
            "mnist",
            "mnist",
            "handwritten digits, 70,000 28x28 grey (LeCun et al.)",
            _files(
                _MNIST,
                {
                    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
                    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", 28_881),
                    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", 1_648_877),
                    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", 4_542),
                },
            ),
        ),
        Published(
            "fashion-mnist",
            "mnist",
            "clothing, 70,000 28x28 grey in 10 classes (Zalando Research)",
            _files(
                _FASHION,
                {
                    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880),
                    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", 29_515),
                    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", 4_422_102),
                    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", 5_148),
                },
            ),
        ),
        Published(
            "cifar10",
            "cifar10",
            "60,000 32x32 colour images in 10 classes (Krizhevsky)",
            _files(
                (_KRIZ,),
                {"cifar-10-python.tar.gz": ("c58f30108f718f92721af3b95e74349a", 170_498_071)},
            ),
            unpacks_to="cifar-10-batches-py",
        ),
        Published(
            "cifar100",
            "cifar100",
            "60,000 32x32 colour images in 100 classes (Krizhevsky)",
            _files(
                (_KRIZ,),
                {"cifar-100-python.tar.gz": ("eb9058c3a382ffc7106e4002c42a8d85", 169_001_437)},
            ),
            unpacks_to="cifar-100-python",
        ),
    )
}


def find(name: str) -> Published:
    """The catalogue entry of ``name``; an unknown name is a one-line error."""
    if name not in CATALOG:
        hint = "; imagefolder is given by path (--data-path)" if name == "imagefolder" else ""
        raise NasError(
            f"unknown data set {name!r} (known: {', '.join(CATALOG)}){hint}", field="data.name"
        )
    return CATALOG[name]


def path_of(name: str, root: Path | None = None) -> Path:
    """The folder a study reads ``name`` from (whether or not it was fetched yet)."""
    return (root or data_root()) / find(name).name


def _unpack(archive: Path, into: str) -> None:
    """Unpack into a fresh folder beside, then rename: a half-unpacked folder never
    stands under the name the loader reads."""
    folder = archive.parent
    with tempfile.TemporaryDirectory(dir=folder, prefix=".unpack-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")  # no absolute paths, links out or devices
        except tarfile.TarError as err:
            raise NasError(f"cannot unpack: {one_line(err)}", source=str(archive)) from None
        unpacked = Path(tmp) / into
        if not unpacked.is_dir():
            raise NasError(f"the archive holds no folder {into}/", source=str(archive))
        target = folder / into
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)


def fetch(
    name: str,
    root: Path | None = None,
    *,
    mirror: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Download (or finish downloading) ``name``'s files into the data root, verify each
    against its published checksum, unpack archives; returns the data set's folder."""
    entry = find(name)
    folder = path_of(name, root)
    for remote in entry.files:
        step = (lambda done, total, f=remote.name: progress(f, done, total)) if progress else None
        download(remote, folder / remote.name, mirror=mirror, progress=step)
    if entry.unpacks_to and not (folder / entry.unpacks_to).is_dir():
        _unpack(folder / entry.files[0].name, entry.unpacks_to)
    return folder


@dataclass(frozen=True)
class Check:
    """One file's state under the data root."""

    file: str
    ok: bool
    reason: str


def verify(name: str, root: Path | None = None) -> list[Check]:
    """Each published file of ``name``: present with its published checksum, or why not."""
    entry = find(name)
    folder = path_of(name, root)
    checks = []
    for remote in entry.files:
        path = folder / remote.name
        if not path.is_file():
            part = path.with_name(path.name + ".part")
            why = f"partly downloaded ({part.stat().st_size} bytes)" if part.exists() else "missing"
            checks.append(Check(remote.name, False, why))
            continue
        got = checksum(path)
        ok = got == remote.md5
        checks.append(Check(remote.name, ok, "ok" if ok else f"md5 {got}, published {remote.md5}"))
    if entry.unpacks_to and all(c.ok for c in checks) and not (folder / entry.unpacks_to).is_dir():
        checks.append(Check(entry.unpacks_to + "/", False, "not unpacked (nas data fetch does)"))
    return checks
