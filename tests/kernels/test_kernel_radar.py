"""rasterize_radar: backends equal the oracle exactly; the oracle equals a per-cell loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kernel_params import SMALL_BACKENDS

from kernels import rasterize_radar

RANGE = (-4.0, -4.0, -2.0, 4.0, 4.0, 2.0)
CELL = (1.0, 0.5, 4.0)


def loop_raster(pts: np.ndarray) -> np.ndarray:
    nx, ny = 8, 16
    sums = np.zeros((pts.shape[1], ny, nx), np.float64)
    count = np.zeros((ny, nx))
    for p in pts:
        ix, iy, iz = (math.floor((p[j] - RANGE[j]) / CELL[j]) for j in range(3))
        if 0 <= ix < nx and 0 <= iy < ny and iz == 0:
            sums[:, iy, ix] += p
            count[iy, ix] += 1
    mean = np.divide(sums, count, out=np.zeros_like(sums), where=count > 0)
    return np.concatenate([mean, count[None]])


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_matches_oracle_and_loop(backend) -> None:
    rng = np.random.default_rng(3)
    pts = rng.uniform(-5, 5, (80, 7)).astype(np.float32)  # x y z rcs vx vy dt
    pts[:3, :3] = [[0, 0, 0], [-4, -4, -2], [4, 0, 0]]  # lower edges in, upper edge out
    pts[3, 0] = np.nan
    ref = rasterize_radar(pts, RANGE, CELL, backend="numpy")
    assert ref.shape == (8, 16, 8) and ref.dtype == np.float32
    np.testing.assert_allclose(
        ref, loop_raster(pts[np.isfinite(pts).all(axis=1)]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(
        np.asarray(rasterize_radar(pts, RANGE, CELL, backend=backend)), ref
    )
    empty = rasterize_radar(np.zeros((0, 7), np.float32), RANGE, CELL, backend=backend)
    np.testing.assert_array_equal(np.asarray(empty), 0)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        rasterize_radar(np.zeros((4, 2), np.float32), RANGE, CELL)
    with pytest.raises(ValueError):
        rasterize_radar(np.zeros((4, 3), np.float32), RANGE, (0, 1, 1))
