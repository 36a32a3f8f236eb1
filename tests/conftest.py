from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nas.arch import Architecture, load_architecture

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = ROOT / "nas" / "reference"


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
