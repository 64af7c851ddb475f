"""One tiny generated dataroot shared by the synth tests (2 scenes x 3 keyframes, small
images, camera sweeps on so camera rates can be checked)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from fusion.cli import main

VERSION = "v1.0-synth"
ARGS = [
    "--version", VERSION, "--scenes", "2", "--samples-per-scene", "3", "--seed", "7",
    "--conditions", "day,night", "--camera-sweeps", "--workers", "2", "--image-size", "224x126",
]  # fmt: skip


def generate(out: Path, *extra: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["generate", "--out", str(out), *ARGS, *extra])
    return rc, buf.getvalue()


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "root"
    rc, _ = generate(out)
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def nusc(synth_root: Path):  # noqa: ANN201
    from nuscenes.nuscenes import NuScenes

    with contextlib.redirect_stdout(io.StringIO()):
        return NuScenes(VERSION, str(synth_root), verbose=False)
