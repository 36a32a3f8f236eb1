"""Contract tests every registered executor gets (a new one joins automatically): found
by its name, one interface, and the study file's choices are exactly the registered."""

from __future__ import annotations

import pytest

from nas.core.errors import NasError
from nas.search.config import SearchConfig
from nas.search.executors import EXECUTORS, Executor, executor_class


@pytest.mark.parametrize("name", EXECUTORS)
def test_an_executor_is_found_by_its_name_and_implements_the_interface(name):
    cls = executor_class(name)
    assert issubclass(cls, Executor) and cls.name == name
    assert not getattr(cls, "__abstractmethods__", None)  # it runs trials
    cls()  # constructible with its defaults: how a study's executor is made
    assert SearchConfig(executor=name).executor == name


@pytest.mark.parametrize("name", EXECUTORS)
def test_a_fetcher_is_a_function_or_none(name):
    fetch = executor_class(name).fetcher()
    assert fetch is None or callable(fetch)


def test_an_unknown_executor_names_the_field_and_the_known_ones():
    for make in (lambda: executor_class("slurm"), lambda: SearchConfig(executor="slurm")):
        with pytest.raises(NasError) as err:
            make()
        assert err.value.field == "executor"
        assert all(n in err.value.reason for n in EXECUTORS)
