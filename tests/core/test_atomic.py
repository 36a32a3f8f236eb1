"""Whole-or-nothing writes: the content, no temporary left behind, the old file kept on
failure, and writers of one file never sharing a temporary file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from nas.core import atomic


def test_writes_and_leaves_nothing_beside(tmp_path: Path):
    target = tmp_path / "sub" / "front.json"
    atomic.write_text(target, "ä\n")
    assert target.read_bytes() == "ä\n".encode()
    assert os.listdir(target.parent) == ["front.json"]


def test_mode_follows_the_umask(tmp_path: Path):
    target = tmp_path / "report.html"
    atomic.write_bytes(target, b"x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "front.json"
    target.write_text("old")

    def refuse(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["front.json"]


def test_concurrent_writers_use_their_own_temporary_files(tmp_path: Path):
    target = tmp_path / "report.html"
    payloads = [bytes([65 + k]) * 200_000 for k in range(8)]
    start = threading.Barrier(len(payloads))
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            start.wait()
            for _ in range(5):
                atomic.write_bytes(target, data)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in payloads  # one writer's bytes, whole
    assert os.listdir(tmp_path) == ["report.html"]
