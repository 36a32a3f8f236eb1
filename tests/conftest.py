from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nas.model.arch import Architecture, load_architecture

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = ROOT / "nas" / "model" / "reference"


@pytest.fixture(scope="session")
def mobilenet_v2() -> Architecture:
    return load_architecture(REFERENCE / "mobilenet_v2.json")


@pytest.fixture(scope="session")
def efficientnet_b0() -> Architecture:
    return load_architecture(REFERENCE / "efficientnet_b0.json")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread_per_xdist_worker():
    """Two xdist workers on two cores: more torch threads only oversubscribe the CPU."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server for this test process (tests/postgres.py)."""
    from tests import postgres

    why = postgres.unavailable()
    if why:
        pytest.skip(why)
    with postgres.server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped after the test."""
    from tests import postgres

    with postgres.database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind the stores support: an SQLite file, PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")
