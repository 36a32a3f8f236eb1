"""Data sets by name against a real HTTP server on 127.0.0.1 (nothing leaves the
machine): fetched files are real-format and load, a corrupted download is refused, a
broken one resumes with a Range request, and being offline is one clear line."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas.cli import app
from nas.core.download import RemoteFile, download
from nas.core.errors import NasError
from nas.core.paths import data_root
from nas.train import catalog
from nas.train.catalog import Published, fetch, path_of, verify
from nas.train.data import load_dataset
from tests.httpfixture import Served, serving
from tests.train.test_data import _fake_cifar, _fake_mnist


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture()
def mnist_files(tmp_path: Path) -> dict[str, bytes]:
    """Real-format MNIST files (IDX, gzip), as the published names."""
    src = tmp_path / "src"
    src.mkdir()
    _fake_mnist(src)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # _fake_mnist: plain
        (src / f"{stem}.gz").write_bytes(gzip.compress((src / stem).read_bytes(), mtime=0))
    return {p.name: p.read_bytes() for p in src.glob("*.gz")}


def _entry(name: str, files: dict[str, bytes], served: Served, unpacks_to: str = "") -> Published:
    loader = "mnist" if "mnist" in name else name
    remote = tuple(
        RemoteFile(n, (served.url(n),), _md5(b), len(b)) for n, b in sorted(files.items())
    )
    return Published(name, loader, "fixture", remote, unpacks_to)


@pytest.fixture()
def served(mnist_files, monkeypatch):
    with serving(Served(files=dict(mnist_files))) as s:
        monkeypatch.setitem(catalog.CATALOG, "mnist", _entry("mnist", mnist_files, s))
        yield s


def test_fetch_verifies_and_the_files_load(served, tmp_path):
    root = tmp_path / "data"
    folder = fetch("mnist", root)
    assert folder == path_of("mnist", root) == root / "mnist"
    assert all(c.ok for c in verify("mnist", root))
    ds = load_dataset("mnist", path=folder)
    assert ds.train.x.shape[1:] == (1, 28, 28) and len(ds.train) + len(ds.val) + len(ds.test) == 50
    assert sorted(p.name for p in folder.iterdir()) == sorted(served.files)  # no .part left
    before = len(served.log)
    fetch("mnist", root)  # verified files are kept: nothing is requested again
    assert len(served.log) == before


def test_a_corrupted_download_is_refused_and_removed(served, tmp_path):
    served.corrupt = True
    with pytest.raises(NasError, match="checksum mismatch") as err:
        fetch("mnist", tmp_path)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "mnist").iterdir()) == []  # neither the file nor a .part


def test_a_broken_download_resumes_with_a_range_request(served, tmp_path):
    name = "train-images-idx3-ubyte.gz"
    body = served.files[name]
    remote = RemoteFile(name, (served.url(name),), _md5(body), len(body))
    dest = tmp_path / name
    served.cut_after = len(body) // 3
    with pytest.raises(NasError, match="cannot download"):
        download(remote, dest)
    part = dest.with_name(name + ".part")
    assert part.read_bytes() == body[: len(body) // 3] and not dest.exists()
    served.cut_after = 0
    download(remote, dest)
    assert dest.read_bytes() == body and not part.exists()
    assert served.log[-1] == (name, f"bytes={len(body) // 3}-")


def test_a_server_that_ignores_the_range_restarts_cleanly(served, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    body = served.files[name]
    remote = RemoteFile(name, (served.url(name),), _md5(body), len(body))
    (tmp_path / (name + ".part")).write_bytes(body[:10])
    served.ignore_range = True
    assert download(remote, tmp_path / name).read_bytes() == body


def test_a_complete_part_is_checked_not_refetched(served, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    body = served.files[name]
    remote = RemoteFile(name, (served.url(name),), _md5(body), len(body))
    (tmp_path / (name + ".part")).write_bytes(body)  # the server will answer 416
    assert download(remote, tmp_path / name).read_bytes() == body


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/x.gz"
    remote = RemoteFile("x.gz", (url,), "0" * 32)
    monkeypatch.setitem(catalog.CATALOG, "mnist", Published("mnist", "mnist", "fixture", (remote,)))
    with pytest.raises(NasError, match=r"cannot download .*offline\?") as err:
        fetch("mnist", tmp_path / "data")
    assert "\n" not in str(err.value) and "x.gz" in str(err.value)
    assert not (tmp_path / "data").exists()


def _cifar_archive(tmp_path: Path) -> bytes:
    src = tmp_path / "cifar-src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    _fake_cifar(src, "cifar10", per_file=6)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return buf.getvalue()


def test_an_archive_is_unpacked_where_the_loader_reads(tmp_path, monkeypatch):
    files = {"cifar-10-python.tar.gz": _cifar_archive(tmp_path)}
    with serving(Served(files=files)) as s:
        monkeypatch.setitem(
            catalog.CATALOG, "cifar10", _entry("cifar10", files, s, "cifar-10-batches-py")
        )
        folder = fetch("cifar10", tmp_path / "data")
    assert (folder / "cifar-10-batches-py" / "test_batch").is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".unpack-")]
    ds = load_dataset("cifar10", path=folder)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 36
    assert [c.ok for c in verify("cifar10", tmp_path / "data")] == [True]


def test_an_archive_escaping_its_folder_is_refused(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    files = {"cifar-10-python.tar.gz": buf.getvalue()}
    with serving(Served(files=files)) as s:
        monkeypatch.setitem(
            catalog.CATALOG, "cifar10", _entry("cifar10", files, s, "cifar-10-batches-py")
        )
        with pytest.raises(NasError, match="cannot unpack"):
            fetch("cifar10", tmp_path / "data")
    assert not (tmp_path / "data" / "evil").exists() and not (tmp_path / "evil").exists()


def test_the_data_root():
    assert data_root({"NAS_DATA": "/d", "HOME": "/h"}) == Path("/d")
    assert data_root({"XDG_CACHE_HOME": "/c"}) == Path("/c/nas/data")
    assert data_root({}) == Path.home() / ".cache" / "nas" / "data"


def test_unknown_names(tmp_path):
    with pytest.raises(NasError, match="unknown data set 'mnst'"):
        path_of("mnst", tmp_path)
    with pytest.raises(NasError, match="imagefolder is given by path"):
        fetch("imagefolder", tmp_path)


def test_every_catalogue_entry_is_well_formed():
    for name, entry in catalog.CATALOG.items():
        assert (
            entry.name == name and entry.files and entry.loader in ("mnist", "cifar10", "cifar100")
        )
        for f in entry.files:
            assert len(f.md5) == 32 and int(f.md5, 16) >= 0 and f.size > 0
            assert all(u.startswith(("http://", "https://")) and u.endswith(f.name) for u in f.urls)


def test_the_cli(served, tmp_path):
    runner = CliRunner()
    root = str(tmp_path / "data")
    got = runner.invoke(app, ["data", "fetch", "mnist", "--root", root])
    assert got.exit_code == 0, got.output
    assert "verified" in got.output
    got = runner.invoke(app, ["data", "verify", "mnist", "--root", root])
    assert got.exit_code == 0 and got.output.count(" ok") == 4
    got = runner.invoke(app, ["data", "path", "mnist", "--root", root])
    assert got.output.strip() == str(Path(root) / "mnist")
    listed = runner.invoke(app, ["data", "list", "--root", root]).output
    assert any(line.startswith("mnist") and "fetched" in line for line in listed.splitlines())
    (Path(root) / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"changed")
    got = runner.invoke(app, ["data", "verify", "mnist", "--root", root])
    assert got.exit_code == 1 and "published" in got.output


def test_the_cli_with_a_mirror(served, tmp_path, monkeypatch):
    """A mirror is tried instead of the published URLs, and checked the same way."""
    entry = catalog.CATALOG["mnist"]
    bogus = tuple(
        RemoteFile(f.name, ("http://127.0.0.1:9/nothing",), f.md5, f.size) for f in entry.files
    )
    monkeypatch.setitem(catalog.CATALOG, "mnist", Published("mnist", "mnist", "fixture", bogus))
    got = CliRunner().invoke(
        app, ["data", "fetch", "mnist", "--root", str(tmp_path), "--mirror", served.url()]
    )
    assert got.exit_code == 0, got.output
    assert sorted(name for name, _ in served.log) == sorted(served.files)


def test_a_study_reads_a_fetched_data_set_from_the_data_root(served, tmp_path, monkeypatch):
    """`[data] name = "mnist"` without a path: fetched into NAS_DATA, found there."""
    monkeypatch.setenv("NAS_DATA", str(tmp_path / "root"))
    with pytest.raises(NasError, match=r"not in the data root: run `nas data fetch mnist`") as err:
        load_dataset("mnist")
    assert err.value.field == "path"
    fetch("mnist")
    assert len(load_dataset("mnist", val_fraction=0.2, test_fraction=0.2).train) == 30


def test_fashion_mnist_reads_the_same_format(tmp_path):
    _fake_mnist(tmp_path)
    ds = load_dataset("fashion-mnist", path=tmp_path)
    assert ds.num_classes == 10 and ds.train.x.shape[1:] == (1, 28, 28)
