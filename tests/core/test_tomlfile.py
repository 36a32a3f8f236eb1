"""Reading TOML by path or bundled name: the data, where it came from, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.core.bundled import bundled_tomls
from nas.core.errors import NasError
from nas.core.tomlfile import is_path, load_toml


def load(arg: object):
    return load_toml(arg, folder="search_spaces", kind="search space", field="space")


def test_a_bundled_file_by_name_and_by_path():
    by_name = load("tiny")
    assert by_name.bundled and by_name.name == "tiny" and by_name.data
    by_path = load(Path(str(bundled_tomls("search_spaces")["tiny"])))
    assert by_path.bundled and by_path.data == by_name.data


def test_a_file_of_ones_own(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "x"\n[a]\nb = 1\n', encoding="utf-8")
    got = load(str(path))
    assert (got.data, got.source, got.name, got.bundled) == (
        {"name": "x", "a": {"b": 1}},
        str(path),
        "mine",
        False,
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\xff\xfe\x00garbage", "search space file is not UTF-8 text"), (b"a = [", "malformed TOML")],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(NasError, match=reason) as err:
        load(path)
    assert err.value.source == str(path) and "\n" not in str(err.value)


def test_missing_file_and_unknown_name():
    with pytest.raises(NasError, match="cannot read search space file"):
        load("no/such.toml")
    with pytest.raises(NasError, match=r"unknown search space 'tin' \(known: .*tiny") as err:
        load("tin")
    assert err.value.field == "space"


def test_what_counts_as_a_path():
    assert is_path("a.toml") and is_path("dir/a") and is_path(Path("a"))
    assert not is_path("mobile")
