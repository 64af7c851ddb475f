"""Kernel test fixtures: backends present here, the real keyframe scan.

CUDA kernels run on the GPU when numba finds one, else under numba's simulator: this sets
NUMBA_ENABLE_CUDASIM=1 when no NVIDIA device node exists, which only takes effect if numba was
not imported yet (the root conftest should do the same before anything imports numba).
"""

from __future__ import annotations

import os
from pathlib import Path

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not Path("/dev/nvidia0").exists():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from kernel_params import REAL_ROOT  # noqa: E402


@pytest.fixture(scope="session")
def real_scan() -> np.ndarray:
    """The real LIDAR_TOP keyframe scan (34,688, 5) float32: x, y, z (m), intensity, ring."""
    files = sorted((REAL_ROOT / "samples" / "LIDAR_TOP").glob("*.pcd.bin"))
    assert files, f"no LIDAR_TOP scan under {REAL_ROOT}"
    return np.fromfile(files[0], np.float32).reshape(-1, 5)
