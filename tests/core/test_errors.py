"""Errors as one line: NasError's placement, and one_line's choice of line."""

from __future__ import annotations

from nas.core.errors import NasError, one_line


def test_nas_error_names_file_and_field():
    err = NasError("must be   positive\n", field="lr", source="study.toml")
    assert str(err) == "study.toml: lr: must be positive"
    assert str(err.at(prefix="train")) == "study.toml: train.lr: must be positive"


def test_one_line_picks_a_line():
    err = RuntimeError("\n  summary line \ndetail\n\nFinalError: the cause  \n")
    assert one_line(err) == "summary line"
    assert one_line(err, line="last") == "FinalError: the cause"
    assert one_line(err, line="all") == "summary line detail FinalError: the cause"
    assert one_line(err, named=True) == "RuntimeError: summary line"


def test_one_line_of_an_empty_message_is_the_type():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(ValueError("  \n"), named=True) == "ValueError"


def test_one_line_is_cut_to_the_limit():
    text = one_line(ValueError("x" * 1000), limit=50)
    assert len(text) == 50 and text.endswith("...")
