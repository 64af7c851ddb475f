"""One small moving synthetic scene (radar, LIDAR sweeps, CAN bus) for the replay tests, and
the logs `fusion convert` makes of it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from fusion.cli import main

VERSION = "v1.0-synth"
SCENE = "scene-0001"
GENERATE = [
    "--version", VERSION, "--scenes", "1", "--samples-per-scene", "4", "--seed", "11",
    "--conditions", "day", "--workers", "1", "--image-size", "704x396",
]  # fmt: skip


def quiet(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


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
        argv = ["convert", str(replay_root), "--version", VERSION, "--scene", SCENE]
        rc, text, err = quiet([*argv, "--to", kind, "--out", str(path)])
        assert rc == 0, text + err
    return logs
