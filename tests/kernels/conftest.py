"""Kernel test fixtures: the real keyframe scan. (CUDA kernels run on the GPU when numba finds
one, else under numba's simulator, which the root conftest switches on.)"""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import REAL_ROOT


@pytest.fixture(scope="session")
def real_scan() -> np.ndarray:
    """The real LIDAR_TOP keyframe scan (34,688, 5) float32: x, y, z (m), intensity, ring."""
    files = sorted((REAL_ROOT / "samples" / "LIDAR_TOP").glob("*.pcd.bin"))
    assert files, f"no LIDAR_TOP scan under {REAL_ROOT}"
    return np.fromfile(files[0], np.float32).reshape(-1, 5)
