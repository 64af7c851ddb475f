"""Fixtures of the replay tests: one small moving synthetic scene (radar, LIDAR sweeps, CAN bus)
and the logs `fusion convert` makes of it (constants and helpers in `replay_data`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from replay_data import GENERATE, SCENE, VERSION, quiet


@pytest.fixture(scope="session")
def replay_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "root"
    rc, text, err = quiet(["generate", "--out", str(out), *GENERATE])
    assert rc == 0, text + err
    return out


@pytest.fixture(scope="session")
def replay_logs(replay_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("replay-logs")
    logs = {
        "mcap": folder / "scene.mcap",
        "ros2": folder / "scene_ros2",
        "ros1": folder / "scene.bag",
    }
    for kind, path in logs.items():
        argv = ["convert", "--dataroot", str(replay_root), "--version", VERSION, "--scene", SCENE]
        rc, text, err = quiet([*argv, "--to", kind, "--out", str(path)])
        assert rc == 0, text + err
    return logs
