"""merge_sweeps: the Numba kernel equals the numpy reference exactly; the reference equals a
per-point loop in float64; the close-return filter, the unmoved copy and the row counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import merge_sweeps


def rigid(yaw: float, pitch: float, t: tuple[float, float, float]) -> np.ndarray:
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    m = np.eye(4)
    m[:3, :3] = rz @ ry
    m[:3, 3] = t
    return m


def loop_merge(scans, matrices, dts, close_m):
    rows = []
    for pts, m, dt in zip(scans, matrices, dts, strict=True):
        for p in pts:
            if m is None:
                xyz = p[:3]
            elif abs(p[0]) < np.float32(close_m) and abs(p[1]) < np.float32(close_m):
                continue
            else:
                xyz = m[:3, :3] @ p[:3].astype(np.float64) + m[:3, 3]
            rows.append([*np.asarray(xyz, np.float32), p[3], np.float32(dt)])
    return np.array(rows, np.float32).reshape(-1, 5)


def cloud(rng: np.random.Generator, n: int, width: int = 5) -> np.ndarray:
    pts = rng.normal(0, 3, (n, width)).astype(np.float32)
    pts[: n // 4, :2] *= 0.2  # some ego-vehicle returns inside the close square
    return pts


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=5),
    keyframe_in_place=st.booleans(),
    close_m=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_numba_equals_reference_equals_loop(seed, sizes, keyframe_in_place, close_m):
    rng = np.random.default_rng(seed)
    scans = [cloud(rng, n) for n in sizes]
    matrices = [rigid(*rng.uniform(-3, 3, 2), tuple(rng.uniform(-20, 20, 3))) for _ in sizes]
    if keyframe_in_place:
        matrices[0] = None
    dts = [0.05 * k for k in range(len(sizes))]
    ref, ref_kept = merge_sweeps(scans, matrices, dts, close_m, backend="numpy")
    got, kept = merge_sweeps(scans, matrices, dts, close_m, backend="numba")
    np.testing.assert_array_equal(got, ref)
    assert kept == ref_kept and sum(kept) == len(got)
    np.testing.assert_array_equal(ref, loop_merge(scans, matrices, dts, close_m))
    assert got.dtype == np.float32 and got.flags.c_contiguous


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_close_returns_dropped_from_moved_scans_only(backend):
    edge = np.float32(1.0)
    pts = np.array(
        [
            [0.5, -0.5, 0, 1, 0],  # inside: dropped
            [edge, 0.0, 0, 2, 0],  # on the face: kept (strictly less drops)
            [0.0, -edge, 0, 3, 0],  # on the face: kept
            [0.99, 5.0, 0, 4, 0],  # far in y: kept
        ],
        np.float32,
    )
    out, kept = merge_sweeps([pts, pts], [None, np.eye(4)], [0.0, 0.1], 1.0, backend=backend)
    assert kept == [4, 3]
    np.testing.assert_array_equal(out[:4, :4], pts[:, :4])  # the unmoved scan is copied whole
    np.testing.assert_array_equal(out[4:, 3], [2, 3, 4])
    np.testing.assert_array_equal(out[:, 4], np.float32([0, 0, 0, 0, 0.1, 0.1, 0.1]))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_unmoved_scan_keeps_its_coordinates_beside_a_nan(backend):
    pts = np.array([[1.0, np.nan, 2.0, 7.0, 9.0]], np.float32)
    out, _ = merge_sweeps([pts], [None], [0.0], 1.0, backend=backend)
    assert out[0, 0] == 1.0 and np.isnan(out[0, 1]) and out[0, 2] == 2.0 and out[0, 3] == 7.0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_translation_and_lag(backend):
    pts = np.array([[10.0, 0.0, 0.0, 0.5]], np.float32)  # four columns are enough
    out, kept = merge_sweeps([pts], [rigid(math.pi / 2, 0, (1, 2, 3))], [0.25], 0.0, backend)
    np.testing.assert_allclose(out[0], [1.0, 12.0, 3.0, 0.5, 0.25], atol=1e-6)
    assert kept == [1]


def test_empty_and_bad_inputs():
    out, kept = merge_sweeps([], [], [], 1.0)
    assert out.shape == (0, 5) and kept == []
    with pytest.raises(ValueError, match="float32"):
        merge_sweeps([np.zeros((3, 5))], [None], [0.0], 1.0)
    with pytest.raises(ValueError, match="matrices"):
        merge_sweeps([np.zeros((3, 5), np.float32)], [], [0.0], 1.0)
    with pytest.raises(ValueError, match="host"):
        merge_sweeps([np.zeros((3, 5), np.float32)], [None], [0.0], 1.0, backend="cuda")
