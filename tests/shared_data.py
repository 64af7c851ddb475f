"""The data every test folder shares, defined once: the real nuScenes keyframe carried in
tests/data (CC BY-NC-SA 4.0; see its LICENSE). Test modules import it by name (`tests/` is on
the path through the root conftest); fixtures over it are in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REAL_ROOT = TESTS / "data" / "nuscenes-real-frame"
REAL_VERSION = "v1.0-mini"
REAL_SAMPLE = "ca9a282c9e77460f8360f564131a8af5"
