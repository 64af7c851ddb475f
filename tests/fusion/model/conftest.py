"""Fixtures of the model tests: a tiny config and synthetic frames (see model_fakes)."""

from __future__ import annotations

import pytest
from model_fakes import make_frame, tiny_config, tiny_params


@pytest.fixture(scope="session")
def tiny_cfg():
    return tiny_config()


@pytest.fixture(scope="session")
def params():
    return tiny_params()


@pytest.fixture(scope="session")
def fake_frames():
    return [make_frame(i) for i in range(4)]
