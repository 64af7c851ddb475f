"""voxelize: every backend equals the numpy oracle exactly, and the oracle equals spconv."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_params import CPU_BACKENDS, SMALL_BACKENDS

from kernels import voxelize

RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
CONFIGS = [((0.2, 0.2, 8.0), 20, 30000), ((0.1, 0.1, 0.2), 5, 4000), ((0.8, 0.8, 8.0), 16, 12000)]


def assert_same(a, b) -> None:
    if hasattr(a, "features"):
        np.testing.assert_array_equal(np.asarray(a.features), np.asarray(b.features))
        np.testing.assert_array_equal(np.asarray(a.num_points), np.asarray(b.num_points))
    else:
        np.testing.assert_array_equal(np.asarray(a.point_voxel), np.asarray(b.point_voxel))
    np.testing.assert_array_equal(np.asarray(a.coords), np.asarray(b.coords))
    assert a.num_nan == b.num_nan


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("mode", ["hard", "dynamic"])
def test_real_scan_matches_oracle(real_scan, backend, cfg, mode) -> None:
    size, p, mv = cfg
    ref = voxelize(real_scan, size, RANGE, p, mv, mode, backend="numpy")
    assert_same(voxelize(real_scan, size, RANGE, p, mv, mode, backend=backend), ref)


def spconv_voxels(points: np.ndarray, size, p: int, mv: int, with_id: bool = False):
    """spconv's PointToVoxel (CPU) on `points` over RANGE: (features, coords as (x, y, z),
    num_points, per-point voxel id or None without `with_id`) as numpy; skips the test when
    spconv is not installed."""
    try:
        import torch
        from spconv.pytorch.utils import PointToVoxel
    except ImportError as exc:
        pytest.skip(f"spconv not installed ({exc})")
    gen = PointToVoxel(
        vsize_xyz=list(size),
        coors_range_xyz=list(RANGE),
        num_point_features=points.shape[1],
        max_num_voxels=mv,
        max_num_points_per_voxel=p,
    )
    tp = torch.from_numpy(points)
    vox, idx, num, point_voxel = gen.generate_voxel_with_id(tp) if with_id else (*gen(tp), None)
    # spconv's coords are (z, y, x)
    return vox.numpy(), idx.numpy()[:, ::-1], num.numpy(), point_voxel


def assert_equals_spconv(ours, theirs) -> None:
    features, coords, num_points, _ = theirs
    np.testing.assert_array_equal(ours.features, features)
    np.testing.assert_array_equal(ours.coords, coords)
    np.testing.assert_array_equal(ours.num_points, num_points)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_oracle_equals_spconv(real_scan, cfg) -> None:
    size, p, mv = cfg
    theirs = spconv_voxels(real_scan, size, p, mv, with_id=True)
    assert_equals_spconv(voxelize(real_scan, size, RANGE, p, mv, "hard", backend="numpy"), theirs)
    dyn = voxelize(real_scan, size, RANGE, p, mv, "dynamic", backend="numpy")
    np.testing.assert_array_equal(dyn.point_voxel, theirs[3].numpy())


def test_first_appearance_order_and_caps() -> None:
    # cells: A, B, A, C, A, A (cap 3 points per voxel), D (past max_voxels=3)
    pts = np.array(
        [
            [0.5, 0.5, 0.5],
            [1.5, 0.5, 0.5],
            [0.25, 0.5, 0.5],
            [0.5, 1.5, 0.5],
            [0.75, 0.5, 0.5],
            [0.9, 0.5, 0.5],
            [2.5, 2.5, 0.5],
        ],
        np.float32,
    )
    v = voxelize(pts, (1, 1, 1), (0, 0, 0, 4, 4, 1), 3, 3, backend="numpy")
    np.testing.assert_array_equal(v.coords, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(v.num_points, [3, 1, 1])
    np.testing.assert_array_equal(v.features[0], pts[[0, 2, 4]])
    np.testing.assert_array_equal(v.features[1, 1:], 0)
    d = voxelize(pts, (1, 1, 1), (0, 0, 0, 4, 4, 1), 3, 3, "dynamic", backend="numpy")
    np.testing.assert_array_equal(d.point_voxel, [0, 1, 0, 2, 0, 0, -1])


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_edges_empty_outside_nan(backend) -> None:
    lo = (0, 0, 0, 2, 2, 2)
    edges = np.array(
        [
            [0, 0, 0],
            [1, 1, 1],
            [2, 0, 0],
            [1.9999999, 0, 0],
            [0, 2, 0],
            [-1e-7, 0, 0],
            [np.nan, 0, 0],
            [0, 0, np.nan],
            [1e30, 0, 0],
        ],
        np.float32,
    )
    for pts in (edges, np.zeros((0, 3), np.float32), edges[[2, 4, 5]]):
        for mode in ("hard", "dynamic"):
            ref = voxelize(pts, (1, 1, 1), lo, 2, 8, mode, backend="numpy")
            assert_same(voxelize(pts, (1, 1, 1), lo, 2, 8, mode, backend=backend), ref)
    v = voxelize(edges, (1, 1, 1), lo, 2, 8, backend=backend)
    assert v.num_nan == 2
    # upper edge excluded, lower edge included; 1.9999999 rounds to cell 1 in float32
    np.testing.assert_array_equal(np.asarray(v.coords), [[0, 0, 0], [1, 1, 1], [1, 0, 0]])
    assert voxelize(edges[[2, 4, 5]], (1, 1, 1), lo, 2, 8, backend=backend).features.shape == (
        0,
        2,
        3,
    )


@st.composite
def clouds(draw):
    # the last two sizes make 400^3- and 2000^3-cell grids: the Numba CPU kernel then hashes
    # cell ids (held as int32, and as int64 above 2^31) instead of indexing a dense table
    size = draw(
        st.sampled_from(
            [(0.2, 0.2, 0.2), (0.25, 0.5, 1.0), (0.1, 0.3, 0.7), (5e-3, 5e-3, 5e-3), (1e-3,) * 3]
        )
    )
    n = draw(st.integers(0, 60))
    # integer multiples of the cell size land on cell edges (after float32 rounding)
    k = draw(st.lists(st.tuples(*[st.integers(-3, 12)] * 3), min_size=n, max_size=n))
    jitter = draw(st.sampled_from([0.0, 1e-6, 0.5]))
    pts = np.array(k, np.float32).reshape(n, 3) * np.float32(size) + np.float32(
        jitter
    ) * np.float32(size)
    extra = np.arange(n, dtype=np.float32)[:, None]
    pts = np.concatenate([pts, extra], axis=1)
    if n and draw(st.booleans()):
        pts[draw(st.integers(0, n - 1)), draw(st.integers(0, 2))] = np.nan
    p = draw(st.integers(1, 4))
    mv = draw(st.integers(0, 20))
    return pts, size, p, mv


@settings(max_examples=60, deadline=None)
@given(clouds(), st.sampled_from(["hard", "dynamic"]))
def test_property_numba_equals_oracle(cloud, mode) -> None:
    pts, size, p, mv = cloud
    rng = (0.0, 0.0, 0.0, 2.0, 2.0, 2.0)
    ref = voxelize(pts, size, rng, p, mv, mode, backend="numpy")
    assert_same(voxelize(pts, size, rng, p, mv, mode, backend="numba"), ref)
    if mode == "hard":
        n_in = np.asarray(ref.num_points).sum()
        assert n_in <= len(pts) - ref.num_nan
        assert len(ref.coords) <= mv


@settings(max_examples=4, deadline=None)
@given(clouds())
def test_property_cuda_equals_oracle(cloud) -> None:
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU and the numba CUDA simulator is off")
    pts, size, p, mv = cloud
    rng = (0.0, 0.0, 0.0, 2.0, 2.0, 2.0)
    assert_same(
        voxelize(pts, size, rng, p, mv, backend="cuda"),
        voxelize(pts, size, rng, p, mv, backend="numpy"),
    )


def test_bad_arguments() -> None:
    pts = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError):
        voxelize(np.zeros((3, 2), np.float32), (1, 1, 1), (0, 0, 0, 1, 1, 1), 1, 1)
    with pytest.raises(ValueError):
        voxelize(pts, (0, 1, 1), (0, 0, 0, 1, 1, 1), 1, 1)
    with pytest.raises(ValueError):
        voxelize(pts, (1, 1, 1), (0, 0, 0, 1, 1, 1), 0, 1)
    with pytest.raises(ValueError):
        voxelize(pts, (1, 1, 1), (0, 0, 0, 1, 1, 1), 1, 1, backend="gpu")  # type: ignore[arg-type]


def test_torch_in_torch_out(real_scan) -> None:
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(real_scan)
    v = voxelize(t, (0.2, 0.2, 8.0), RANGE, 20, 30000)
    assert isinstance(v.features, torch.Tensor) and v.coords.dtype == torch.int32
    ref = voxelize(real_scan, (0.2, 0.2, 8.0), RANGE, 20, 30000, backend="numpy")
    np.testing.assert_array_equal(v.features.numpy(), ref.features)


@pytest.mark.parametrize("cfg", CONFIGS[:2])
def test_numba_equals_spconv_on_ten_sweeps(real_scan, cfg) -> None:
    import importlib

    cloud = importlib.import_module("fusion.bench.kernels").ten_sweeps(real_scan)
    size, p, mv = cfg
    theirs = spconv_voxels(cloud, size, p, mv)
    assert_equals_spconv(voxelize(cloud, size, RANGE, p, mv, backend="numba"), theirs)


# -- the excluded box (the ego filter in voxelize's pass) ----------------------------------------

EGO = (-1.0, -1.7, -2.2, 1.0, 2.6, 0.3)


def _face_points(box) -> np.ndarray:
    """Points on, just inside and just outside (one float32 step) each face of `box`, and in
    its middle; plus a NaN and far points."""
    b = np.asarray(box, np.float64)
    mid = ((b[:3] + b[3:]) / 2).astype(np.float32)
    rows = [mid.copy()]
    for axis in range(3):
        for bound in (b[axis], b[axis + 3]):
            f = np.float32(bound)
            for v in (np.nextafter(f, np.float32(-9)), f, np.nextafter(f, np.float32(9))):
                p = mid.copy()
                p[axis] = v
                rows.append(p)
    rows += [np.array([np.nan, 0, 0], np.float32), np.array([20.0, -30.0, 0.5], np.float32)]
    pts = np.stack(rows)
    return np.concatenate([pts, np.arange(len(pts), dtype=np.float32)[:, None]], axis=1)


@pytest.mark.parametrize("box", [EGO, (-1.01, -1.7, -2.2, 1.01, 2.6, 0.3)])
def test_inside_box_is_the_float64_comparison(box) -> None:
    from kernels import inside_box

    pts = _face_points(box)
    b = np.asarray(box)
    xyz = pts[:, :3].astype(np.float64)
    want = np.all((xyz >= b[:3]) & (xyz <= b[3:]), axis=1)
    assert 0 < want.sum() < len(pts)
    np.testing.assert_array_equal(inside_box(pts, box), want)
    np.testing.assert_array_equal(inside_box(xyz, box), want)  # float64 points, same answer


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
@pytest.mark.parametrize("box", [EGO, (-1.01, -1.7, -2.2, 1.01, 2.6, 0.3)])
@pytest.mark.parametrize("mode", ["hard", "dynamic"])
def test_excluded_box_equals_voxelizing_without_its_points(backend, box, mode) -> None:
    """At the faces (float32 steps either side) and in bulk: the box's points are left out
    exactly as if removed first (`inside_box`); the voxel numbering is that of the rest."""
    from kernels import inside_box

    rng = np.random.default_rng(3)
    n = 200 if backend == "cuda" else 3000  # the CUDA simulator runs a thread at a time
    bulk = np.concatenate([rng.uniform(-4, 4, (n, 3)), rng.uniform(0, 255, (n, 1))], axis=1).astype(
        np.float32
    )
    for pts in (_face_points(box), bulk, np.zeros((0, 4), np.float32)):
        inside = inside_box(pts, box)
        kept = pts[~inside]
        for size, p, mv in (((0.5, 0.5, 8.0), 3, 50), ((0.1, 0.1, 0.1), 2, 10000)):
            got = voxelize(pts, size, RANGE, p, mv, mode, exclude=box, backend=backend)
            want = voxelize(kept, size, RANGE, p, mv, mode, backend="numpy")
            if mode == "hard":
                assert_same(got, want)
            else:  # per input point: the box's points in no voxel, the rest as without them
                point_voxel = np.asarray(got.point_voxel)
                assert (point_voxel[inside] == -1).all()
                np.testing.assert_array_equal(point_voxel[~inside], want.point_voxel)
                np.testing.assert_array_equal(np.asarray(got.coords), want.coords)
                assert got.num_nan == want.num_nan
