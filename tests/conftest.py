from __future__ import annotations

from pathlib import Path

import pytest

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
