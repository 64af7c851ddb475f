"""Shared fixtures: the real nuScenes keyframe carried in tests/data (CC BY-NC-SA 4.0)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# numba reads NUMBA_ENABLE_CUDASIM once, at its first import: switch the CUDA simulator on before
# any test module imports numba, so the CUDA kernels are exercised on machines without a GPU.
if "NUMBA_ENABLE_CUDASIM" not in os.environ and not Path("/dev/nvidia0").exists():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import pytest  # noqa: E402
from shared_data import REAL_ROOT, REAL_SAMPLE, REAL_VERSION  # noqa: E402


@pytest.fixture(scope="session")
def real_root() -> Path:
    return REAL_ROOT


@pytest.fixture(scope="session")
def real_reader():
    from fusion.data.reader import NuScenesReader, ReaderOptions

    return NuScenesReader(REAL_ROOT, REAL_VERSION, ReaderOptions(lidar_sweeps=1, radar_sweeps=1))


@pytest.fixture(scope="session")
def real_frame(real_reader):
    return real_reader.frame(REAL_SAMPLE)


@pytest.fixture(scope="session")
def real_nusc():
    from nuscenes.nuscenes import NuScenes

    return NuScenes(REAL_VERSION, str(REAL_ROOT), verbose=False)


@pytest.fixture()
def real_copy(tmp_path: Path) -> Path:
    """A writable copy of the real keyframe dataroot, for corrupting."""
    dst = tmp_path / "real"
    shutil.copytree(REAL_ROOT, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst
