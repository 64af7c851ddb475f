"""Shared logs for the source tests: one small generated scene (radar, LIDAR and camera sweeps,
CAN bus) and the real keyframe, each converted by `fusion convert` to every layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import REAL_ROOT, REAL_VERSION
from source_logs import (
    GENERATE,
    SYNTH_SCENE,
    SYNTH_VERSION,
    convert_all,
    quiet_main,
)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sources-synth") / "root"
    rc, text = quiet_main(["generate", "--out", str(out), *GENERATE])
    assert rc == 0, text
    return out


@pytest.fixture(scope="session")
def synth_logs(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return convert_all(synth_root, SYNTH_VERSION, SYNTH_SCENE, tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="session")
def real_scene() -> str:
    import json

    return json.loads((REAL_ROOT / REAL_VERSION / "scene.json").read_text())[0]["name"]


@pytest.fixture(scope="session")
def real_logs(real_scene: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return convert_all(REAL_ROOT, REAL_VERSION, real_scene, tmp_path_factory.mktemp("real"))
