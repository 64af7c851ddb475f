"""Constants and helpers of the source tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from fusion.cli import main

SYNTH_VERSION = "v1.0-synth"
SYNTH_SCENE = "scene-0001"
# As tests/synth/conftest.py generates its dataroot, smaller: one scene, two keyframes.
GENERATE = [
    "--version", SYNTH_VERSION, "--scenes", "1", "--samples-per-scene", "2", "--seed", "3",
    "--conditions", "day", "--camera-sweeps", "--workers", "1", "--image-size", "352x198",
]  # fmt: skip
# name -> (convert --to, extra convert args, path to open): the ROS 2 bag also opens as a bare
# .mcap copied out of its folder.
LAYOUTS = {
    "mcap": ("mcap", [], "log.mcap"),
    "ros2-mcap": ("ros2", ["--storage", "mcap"], "ros2-mcap"),
    "ros2-db3": ("ros2", ["--storage", "db3"], "ros2-db3"),
    "ros1": ("ros1", [], "log.bag"),
}


def quiet_main(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue() + err.getvalue()


def convert_all(root: Path, version: str, scene: str, dest: Path) -> dict[str, Path]:
    logs = {}
    for name, (to, extra, target) in LAYOUTS.items():
        path = dest / target
        argv = [
            "convert",
            "--dataroot",
            str(root),
            "--version",
            version,
            "--scene",
            scene,
            "--to",
            to,
        ]
        rc, text = quiet_main([*argv, "--out", str(path), *extra])
        assert rc == 0, text
        logs[name] = path
    bare = dest / "bare-ros2.mcap"
    shutil.copy(next(logs["ros2-mcap"].glob("*.mcap")), bare)
    logs["ros2-bare-mcap"] = bare
    return logs
