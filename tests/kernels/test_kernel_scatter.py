"""scatter_bev: backends equal the oracle exactly; the oracle equals a dense loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_params import SMALL_BACKENDS

from kernels import scatter_bev, voxelize


def dense_loop(features: np.ndarray, coords: np.ndarray, nx: int, ny: int) -> np.ndarray:
    out = np.zeros((features.shape[1], ny, nx), features.dtype)
    for f, (ix, iy, _) in zip(features, coords, strict=True):
        if 0 <= ix < nx and 0 <= iy < ny:
            out[:, iy, ix] += f
    return out


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_small_with_shared_columns(backend) -> None:
    rng = np.random.default_rng(0)
    f = rng.standard_normal((50, 3)).astype(np.float32)
    c = rng.integers(-1, 5, (50, 3)).astype(np.int32)  # shared columns, some outside
    ref = scatter_bev(f, c, (4, 5), backend="numpy")
    np.testing.assert_array_equal(ref, dense_loop(f, c, 4, 5))
    np.testing.assert_array_equal(np.asarray(scatter_bev(f, c, (4, 5), backend=backend)), ref)
    empty = scatter_bev(
        np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), (4, 5), backend=backend
    )
    np.testing.assert_array_equal(np.asarray(empty), np.zeros((3, 5, 4), np.float32))


def test_real_scan_pillars(real_scan) -> None:
    v = voxelize(real_scan, (0.2, 0.2, 8.0), (-51.2, -51.2, -5, 51.2, 51.2, 3), 20, 30000)
    feats = v.features.sum(axis=1)  # (V, 5) a stand-in for pillar features
    ref = scatter_bev(feats, v.coords, (512, 512), backend="numpy")
    np.testing.assert_array_equal(scatter_bev(feats, v.coords, (512, 512), backend="numba"), ref)
    assert ref.shape == (5, 512, 512)
    np.testing.assert_allclose(ref.sum(axis=(1, 2)), feats.sum(axis=0), rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 40),
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(0, 2**31),
)
def test_property_numba(v, c, nx, ny, seed) -> None:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((v, c)).astype(np.float32)
    co = rng.integers(-1, 6, (v, 3)).astype(np.int32)
    np.testing.assert_array_equal(
        scatter_bev(f, co, (nx, ny), backend="numba"), scatter_bev(f, co, (nx, ny), backend="numpy")
    )


def test_bad_shapes() -> None:
    with pytest.raises(ValueError):
        scatter_bev(np.zeros((3, 2), np.float32), np.zeros((2, 3), np.int32), (2, 2))
    with pytest.raises(ValueError):
        scatter_bev(np.zeros((3, 2), np.float32), np.zeros((3, 3), np.int32), (0, 2))
