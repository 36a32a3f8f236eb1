"""Datasets: real digits and MNIST, fake CIFAR in the official format, seeded splits,
train-only statistics and one-line errors for every kind of bad input."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.core.errors import NasError
from nas.train.data import DATASETS, Dataset, Split, load_dataset

ROOT = Path(__file__).resolve().parents[2]
MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"MNIST test split not found at {MNIST} (shared reference data, see its README)",
)


def _torchvision_imports() -> bool:
    try:
        import torchvision.io  # noqa: F401
    except Exception:
        return False
    return True


HAS_TORCHVISION = _torchvision_imports()


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _splits(ds: Dataset) -> tuple[Split, Split, Split]:
    return ds.train, ds.val, ds.test


def _digest(ds: Dataset) -> str:
    h = hashlib.sha256()
    for s in _splits(ds):
        for t in (s.x, s.y, s.indices):
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def _bad(field: str, source: str | Path | None = None, **kwargs) -> NasError:
    """load_dataset(**kwargs) must fail with a one-line NasError naming field (and file)."""
    with pytest.raises(NasError) as info:
        load_dataset(**kwargs)
    err = info.value
    line = str(err)
    assert "\n" not in line
    assert err.field == field and f"{field}: " in line
    if source is not None:
        assert err.source == str(source) and line.startswith(f"{source}: ")
    return err


# --------------------------------------------------------------------------- digits


def test_digits_sizes_shapes_and_labels(digits):
    assert (digits.name, digits.num_classes, digits.in_channels, digits.resolution) == (
        "digits",
        10,
        1,
        8,
    )
    assert [len(s) for s in _splits(digits)] == [1437, 180, 180]
    for s in _splits(digits):
        assert s.x.dtype == torch.uint8 and s.x.shape == (len(s), 1, 8, 8)
        assert s.y.dtype == torch.int64 and s.y.shape == (len(s),)
    assert set(digits.train.y.tolist()) == set(range(10))
    assert int(digits.train.x.max()) == 255  # 0..16 scaled to 0..255


def test_digits_values_are_sklearn_scaled(digits):
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    expected = torch.from_numpy(np.round(images * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8))
    for s in _splits(digits):
        assert torch.equal(s.x, expected[s.indices])
        assert torch.equal(s.y, torch.from_numpy(labels)[s.indices])


def test_splits_are_stratified(digits):
    pool = torch.cat([s.y for s in _splits(digits)]).bincount()
    for s in (digits.val, digits.test):
        share = pool * len(s) / pool.sum()
        assert (s.y.bincount(minlength=10) - share).abs().max() <= 1


def test_stats_come_from_train_only(digits):
    x = digits.train.x.to(torch.float64) / 255
    assert digits.mean[0] == pytest.approx(float(x.mean()), abs=1e-12)
    assert digits.std[0] == pytest.approx(float(x.std(unbiased=False)), abs=1e-12)
    other = load_dataset("digits", seed=3)
    assert other.mean != digits.mean  # another train split, other statistics


def test_normalise(digits):
    z = digits.normalise(digits.train.x)
    assert z.dtype == torch.float32 and z.shape == digits.train.x.shape
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(z.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    ref = (digits.val.x.float() / 255 - digits.mean[0]) / digits.std[0]
    assert torch.allclose(digits.normalise(digits.val.x), ref, atol=1e-5)
    big = digits.normalise(digits.val.x, resolution=16)
    assert big.shape == (len(digits.val), 1, 16, 16)
    assert torch.allclose(
        big, F.interpolate(ref, size=(16, 16), mode="bilinear", align_corners=False), atol=1e-5
    )
    assert torch.equal(digits.normalise(digits.val.x, resolution=8), digits.normalise(digits.val.x))
    assert torch.equal(digits.normalise(digits.val.x[0]), digits.normalise(digits.val.x)[0])
    with pytest.raises(TypeError, match="uint8"):
        digits.normalise(digits.val.x.float())
    with pytest.raises(ValueError, match="N, 1, H, W"):
        digits.normalise(digits.val.x.repeat(1, 3, 1, 1))


def test_pickles_without_the_device_cache(digits):
    digits.normalise(digits.val.x[:2])
    again = pickle.loads(pickle.dumps(digits))
    assert again._affine == {} and again.mean == digits.mean
    assert torch.equal(again.normalise(digits.val.x), digits.normalise(digits.val.x))
    assert torch.equal(again.test.indices, digits.test.indices)


def test_split_checks_its_tensors():
    with pytest.raises(TypeError, match="uint8"):
        Split(x=torch.zeros(2, 1, 4, 4), y=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64"):
        Split(x=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), y=torch.zeros(3, dtype=torch.int64))
    assert len(Split(x=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), y=torch.zeros(2).long())) == 2


# --------------------------------------------------------------------------- splits


def test_splits_partition_the_pool(digits):
    every = torch.cat([s.indices for s in _splits(digits)])
    assert torch.equal(every.sort().values, torch.arange(1797))  # no overlap, nothing lost


def test_limit_keeps_the_first_shuffled_samples():
    ds = load_dataset("digits", seed=5, limit=100)
    every = torch.cat([s.indices for s in _splits(ds)])
    assert [len(s) for s in _splits(ds)] == [80, 10, 10]
    expected = torch.randperm(1797, generator=torch.Generator().manual_seed(5))[:100]
    assert torch.equal(every.sort().values, expected.sort().values)


def test_same_seed_same_splits_in_another_process(digits):
    code = (
        "import hashlib\n"
        "from nas.train.data import load_dataset\n"
        "for seed in (0, 1):\n"
        "    d = load_dataset('digits', seed=seed)\n"
        "    h = hashlib.sha256()\n"
        "    for s in (d.train, d.val, d.test):\n"
        "        for t in (s.x, s.y, s.indices):\n"
        "            h.update(t.numpy().tobytes())\n"
        "    print(h.hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    there = out.stdout.split()
    assert there[0] == _digest(digits)
    assert there[1] == _digest(load_dataset("digits", seed=1))
    assert there[0] != there[1]


def test_different_seeds_differ(digits):
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.test.indices, digits.test.indices)
    assert torch.equal(load_dataset("digits", seed=0).test.indices, digits.test.indices)


def test_fractions_and_empty_splits():
    ds = load_dataset("digits", val_fraction=0.0, test_fraction=0.25)
    assert [len(s) for s in _splits(ds)] == [1348, 0, 449]
    assert ds.val.x.shape == (0, 1, 8, 8)


# --------------------------------------------------------------------------- MNIST


@pytest.fixture(scope="module")
def mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz") as f:
        images = f.read()
    with gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        labels = f.read()
    assert images[:4] == b"\x00\x00\x08\x03" and labels[:4] == b"\x00\x00\x08\x01"
    return np.frombuffer(images, np.uint8, offset=16).reshape(-1, 28, 28), np.frombuffer(
        labels, np.uint8, offset=8
    )


@needs_mnist
def test_mnist_from_shared_path(mnist_raw):
    images, labels = mnist_raw
    ds = load_dataset("mnist", path=MNIST)
    assert (ds.num_classes, ds.in_channels, ds.resolution) == (10, 1, 28)
    assert [len(s) for s in _splits(ds)] == [8000, 1000, 1000]
    hist = sum(np.bincount(s.y.numpy(), minlength=10) for s in _splits(ds))
    assert np.array_equal(hist, np.bincount(labels))
    for s in _splits(ds):
        assert s.x.shape == (len(s), 1, 28, 28)
        assert np.array_equal(s.x[:, 0].numpy(), images[s.indices.numpy()])
        assert np.array_equal(s.y.numpy(), labels[s.indices.numpy()])
    first = next(s.x[s.indices == 0][0] for s in _splits(ds) if (s.indices == 0).any())
    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz") as f:
        assert first.numpy().tobytes() == f.read()[16 : 16 + 784]
    assert 0.12 < ds.mean[0] < 0.14 and 0.29 < ds.std[0] < 0.33


def _write_idx(path: Path, array: np.ndarray, magic: bytes | None = None) -> Path:
    header = (magic or bytes([0, 0, 8, array.ndim])) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _fake_mnist(root: Path, n_train: int = 30, n_test: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    xs = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    ys = np.arange(n_train + n_test) % 10
    _write_idx(root / "train-images-idx3-ubyte", xs[:n_train])
    _write_idx(root / "train-labels-idx1-ubyte", ys[:n_train])
    _write_idx(root / "t10k-images-idx3-ubyte.gz", xs[n_train:])
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", ys[n_train:])
    return xs, ys


def test_mnist_pools_every_split_present(tmp_path):
    xs, ys = _fake_mnist(tmp_path)
    ds = load_dataset("mnist", path=str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    assert [len(s) for s in _splits(ds)] == [30, 10, 10]
    for s in _splits(ds):  # pool order: train file, then t10k
        assert np.array_equal(s.x[:, 0].numpy(), xs[s.indices.numpy()])
        assert np.array_equal(s.y.numpy(), ys[s.indices.numpy()])


# --------------------------------------------------------------------------- CIFAR

CIFAR = {
    "cifar10": ([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"], b"labels", 10),
    "cifar100": (["train", "test"], b"fine_labels", 100),
}


def _fake_cifar(root: Path, name: str, per_file: int = 20, protocol: int = 2):
    """Batches in the official layout: rows of 1024 R, 1024 G, 1024 B bytes."""
    files, label_key, k = CIFAR[name]
    rng = np.random.default_rng(2)
    root.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for file_name in files:
        data = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
        data[0] = np.r_[np.full(1024, 255), np.zeros(2048)]  # pure red
        labels = rng.integers(0, k, per_file).tolist()
        batch = {b"batch_label": file_name.encode(), b"data": data, label_key: labels}
        if name == "cifar100":
            batch[b"coarse_labels"] = [v // 5 for v in labels]
        with (root / file_name).open("wb") as f:
            pickle.dump(batch, f, protocol=protocol)
        xs.append(data)
        ys.extend(labels)
    return np.concatenate(xs).reshape(-1, 3, 32, 32), np.asarray(ys)


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_fake_batches(tmp_path, protocol):
    xs, ys = _fake_cifar(tmp_path, "cifar10", protocol=protocol)
    ds = load_dataset("cifar10", path=tmp_path)
    assert (ds.num_classes, ds.in_channels, ds.resolution) == (10, 3, 32)
    assert [len(s) for s in _splits(ds)] == [96, 12, 12]
    for s in _splits(ds):
        assert s.x.dtype == torch.uint8 and s.x.shape == (len(s), 3, 32, 32)
        assert np.array_equal(s.x.numpy(), xs[s.indices.numpy()])
        assert np.array_equal(s.y.numpy(), ys[s.indices.numpy()])
        for img in s.x[s.indices % 20 == 0]:  # first image of each batch: red
            assert (img[0] == 255).all() and (img[1:] == 0).all()
    assert len(ds.mean) == len(ds.std) == 3


def test_cifar100_fine_labels_and_extracted_folder(tmp_path):
    xs, ys = _fake_cifar(tmp_path / "cifar-100-python", "cifar100", per_file=60, protocol=4)
    ds = load_dataset("cifar100", path=tmp_path, seed=7)
    assert ds.num_classes == 100 and [len(s) for s in _splits(ds)] == [96, 12, 12]
    for s in _splits(ds):
        assert np.array_equal(s.x.numpy(), xs[s.indices.numpy()])
        assert np.array_equal(s.y.numpy(), ys[s.indices.numpy()])
        red = s.x[s.indices % 60 == 0]
        assert (red[:, 0] == 255).all() and (red[:, 1:] == 0).all()


def test_cifar_refuses_pickles_that_run_code(tmp_path):
    _fake_cifar(tmp_path, "cifar100")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "test").write_bytes(pickle.dumps({b"data": Evil()}))
    err = _bad("file", tmp_path / "test", name="cifar100", path=tmp_path)
    assert "refusing" in str(err) and not marker.exists()


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (b"not a pickle", "file"),
        ([1, 2, 3], "keys"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "data"),
        ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, "data"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels"),
    ],
)
def test_cifar_bad_batches(tmp_path, batch, field):
    _fake_cifar(tmp_path, "cifar10")
    bad = tmp_path / "data_batch_3"
    bad.write_bytes(batch if isinstance(batch, bytes) else pickle.dumps(batch))
    _bad(field, bad, name="cifar10", path=tmp_path)


# --------------------------------------------------------------------------- bad input


def test_unknown_dataset_lists_known_ones():
    err = _bad("dataset", name="imagenet")
    assert all(name in str(err) for name in DATASETS)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "imagefolder"])
def test_path_is_required(name, tmp_path, monkeypatch):
    """Without a path, a data set `nas data fetch` knows is looked for in the data root
    (here empty); imagefolder is only ever given by path."""
    monkeypatch.setenv("NAS_DATA", str(tmp_path))
    err = _bad("path", name=name)
    if name != "imagefolder":
        assert f"nas data fetch {name}" in str(err) and str(tmp_path / name) in str(err)


def test_path_must_exist_and_be_a_directory(tmp_path):
    missing = tmp_path / "nowhere"
    assert "does not exist" in str(_bad("path", missing, name="mnist", path=missing))
    file = tmp_path / "file"
    file.write_text("x")
    assert "not a directory" in str(_bad("path", file, name="cifar10", path=file))


def test_digits_takes_no_path(tmp_path):
    _bad("path", tmp_path, name="digits", path=tmp_path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mnist", "t10k-images-idx3-ubyte"), ("cifar10", "data_batch_1"), ("cifar100", "train")],
)
def test_directory_without_the_files(tmp_path, name, expected):
    source = tmp_path if name == "mnist" else tmp_path / expected
    assert expected in str(_bad("path", source, name=name, path=tmp_path))


def test_mnist_half_a_pair(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))
    err = _bad("labels", tmp_path, name="mnist", path=tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(err)


def test_mnist_bad_magic(tmp_path):
    _fake_mnist(tmp_path)
    bad = _write_idx(
        tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 28)), b"\0\0\x08\x02"
    )
    assert "bad magic" in str(_bad("magic", bad, name="mnist", path=tmp_path))
    bad.write_bytes(b"\x1f\x8b not really gzip")
    _bad("file", bad, name="mnist", path=tmp_path)


def test_mnist_truncated_data(tmp_path):
    _fake_mnist(tmp_path)
    file = tmp_path / "train-images-idx3-ubyte"
    file.write_bytes(file.read_bytes()[:-5])
    _bad("data", file, name="mnist", path=tmp_path)


def test_mnist_label_count_mismatch(tmp_path):
    _fake_mnist(tmp_path)
    labels = _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(29))
    err = _bad("count", labels, name="mnist", path=tmp_path)
    assert "29 labels" in str(err) and "30 images" in str(err)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": "0.1"}, "val_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"test_fraction": float("nan")}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction"),
        ({"limit": 0}, "limit"),
        ({"limit": 2, "val_fraction": 0.4, "test_fraction": 0.4}, "limit"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, field):
    _bad(field, name="digits", **kwargs)


# --------------------------------------------------------------------------- imagefolder


def _class_folders(root: Path) -> None:
    for name in ("cat", "dog"):
        (root / name).mkdir()


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision imports here")
def test_imagefolder_without_torchvision(tmp_path):
    _class_folders(tmp_path)
    err = _bad("dataset", tmp_path, name="imagefolder", path=tmp_path)
    assert "imagefolder needs torchvision" in str(err)


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision does not import beside this torch")
def test_imagefolder_loads_pngs(tmp_path):
    from torchvision.io import write_png

    _class_folders(tmp_path)
    for label, name in enumerate(("cat", "dog")):
        for i in range(5):
            img = torch.full((3, 10, 12), 40 + 150 * label, dtype=torch.uint8)
            img[0] = 10 * i
            write_png(img, str(tmp_path / name / f"{i}.png"))
    ds = load_dataset(
        "imagefolder", path=tmp_path, image_size=16, val_fraction=0.2, test_fraction=0.2
    )
    assert (ds.num_classes, ds.in_channels, ds.resolution) == (2, 3, 16)
    assert [len(s) for s in _splits(ds)] == [6, 2, 2]
    for s in _splits(ds):
        assert s.x.shape == (len(s), 3, 16, 16)
        assert torch.equal(s.x[:, 1], (40 + 150 * s.y).view(-1, 1, 1).expand(-1, 16, 16).byte())
    (tmp_path / "dog" / "0.png").write_bytes(b"not a png")
    _bad("image", tmp_path / "dog" / "0.png", name="imagefolder", path=tmp_path)
    _bad("path", tmp_path / "cat", name="imagefolder", path=tmp_path / "cat")
