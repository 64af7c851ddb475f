"""Point cloud to voxels, with the semantics of spconv's `PointToVoxel` (CPU).

A point's cell is floor((p - lo) / size) per axis, computed in float32 as spconv does; the grid
has round((hi - lo) / size) cells per axis and a point whose cell falls outside it is dropped
(so "outside [lo, hi)" is decided on the float32 cell, exactly as spconv decides it). Voxels are
numbered in the order their first point appears, points keep input order inside a voxel, and
points past `max_points_per_voxel` or in voxels past `max_voxels` are dropped.

NaN: a point with a NaN in x, y or z is dropped like an out-of-range point and counted in
`num_nan` of the result (NaN in the other feature columns is carried as a value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
from numba import cuda

from kernels import _backend
from kernels._backend import Backend

VoxelMode = Literal["hard", "dynamic"]

# Multiplicative hashing constant (2^64 / golden ratio) as a signed 64-bit value.
_HASH_MUL = np.int64(-7046029254386353131)


@dataclass(frozen=True)
class HardVoxels:
    """Hard voxelization.

    features: (V, P, C) float32, zero-padded past num_points; coords: (V, 3) int32 (ix, iy, iz);
    num_points: (V,) int32; num_nan: points dropped for a NaN coordinate.
    Arrays are numpy, or tensors/device arrays like the input points.
    """

    features: Any
    coords: Any
    num_points: Any
    num_nan: int


@dataclass(frozen=True)
class DynamicVoxels:
    """Dynamic voxelization.

    coords: (V, 3) int32 (ix, iy, iz) in first-appearance order; point_voxel: (N,) int32 voxel
    index of each point, -1 outside the grid, NaN, or in a voxel past max_voxels;
    num_nan: points dropped for a NaN coordinate.
    """

    coords: Any
    point_voxel: Any
    num_nan: int


@dataclass(frozen=True)
class _Grid:
    lo: np.ndarray  # (3,) float32
    size: np.ndarray  # (3,) float32
    shape: np.ndarray  # (3,) int64: nx, ny, nz


def _grid(voxel_size: Any, point_range: Any) -> _Grid:
    size = np.asarray(voxel_size, np.float32).reshape(3)
    rng = np.asarray(point_range, np.float32).reshape(6)
    lo, hi = rng[:3], rng[3:]
    if not (np.all(size > 0) and np.all(hi > lo)):
        raise ValueError(f"bad voxel_size {voxel_size} or point_range {point_range}")
    # spconv: std::round of a float32 quotient (half away from zero; the quotient is > 0).
    shape = np.array([math.floor(float(q) + 0.5) for q in (hi - lo) / size], np.int64)
    return _Grid(lo=lo, size=size, shape=shape)


def _check(points: Any, max_points_per_voxel: int, max_voxels: int) -> None:
    shape = tuple(points.shape)
    if len(shape) != 2 or shape[1] < 3:
        raise ValueError(f"points must be (N, C>=3), got {shape}")
    if max_points_per_voxel < 1 or max_voxels < 0:
        raise ValueError("max_points_per_voxel must be >= 1 and max_voxels >= 0")


# ---------------------------------------------------------------- numpy reference (the oracle)


def _assign_numpy(
    pts: np.ndarray, grid: _Grid, max_voxels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-point voxel index (-1 dropped), slot in its voxel, voxel coords, NaN count."""
    n = pts.shape[0]
    xyz = pts[:, :3]
    cell = np.floor((xyz - grid.lo) / grid.size)  # float32 throughout, as spconv
    valid = np.all((cell >= 0) & (cell < grid.shape), axis=1)
    num_nan = int(np.isnan(xyz).any(axis=1).sum())
    idx = np.flatnonzero(valid)
    c = cell[idx].astype(np.int64)
    lin = (c[:, 0] * grid.shape[1] + c[:, 1]) * grid.shape[2] + c[:, 2]
    uniq, first, inverse = np.unique(lin, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    vox = rank[inverse]
    keep = vox < max_voxels
    point_voxel = np.full(n, -1, np.int32)
    point_voxel[idx[keep]] = vox[keep]
    num_vox = min(len(uniq), max_voxels)
    coords = np.zeros((num_vox, 3), np.int32)
    coords[vox[keep]] = c[keep]
    # slot = how many earlier points share the voxel
    order = np.argsort(vox, kind="stable")
    sorted_vox = vox[order]
    starts = np.searchsorted(sorted_vox, sorted_vox, side="left")
    slot_sorted = np.arange(len(order)) - starts
    slot = np.full(n, -1, np.int64)
    slot[idx[order]] = slot_sorted
    return point_voxel, slot, coords, num_nan


def _hard_numpy(pts: np.ndarray, grid: _Grid, p: int, max_voxels: int) -> HardVoxels:
    point_voxel, slot, coords, num_nan = _assign_numpy(pts, grid, max_voxels)
    use = (point_voxel >= 0) & (slot < p)
    features = np.zeros((len(coords), p, pts.shape[1]), np.float32)
    features[point_voxel[use], slot[use]] = pts[use]
    num_points = np.bincount(point_voxel[use], minlength=len(coords)).astype(np.int32)
    return HardVoxels(features, coords, num_points, num_nan)


# ---------------------------------------------------------------- numba CPU


@numba.njit(cache=True, parallel=True)
def _cells_numba(
    pts: np.ndarray, lo: np.ndarray, size: np.ndarray, shape: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Linear cell id per point (-1 outside) and a NaN flag per point."""
    n = pts.shape[0]
    lin = np.empty(n, np.int64)
    nan = np.zeros(n, np.uint8)
    for i in numba.prange(n):
        lid = np.int64(0)
        for j in range(3):
            q = np.float32(np.float32(pts[i, j]) - lo[j]) / size[j]
            if q != q:
                nan[i] = 1
            # the float comparison rejects NaN and huge values before the integer cast
            if not (q >= 0 and q < shape[j]):
                lid = -1
                break
            lid = lid * shape[j] + np.int64(math.floor(q))
        lin[i] = lid
    return lin, nan


@numba.njit(cache=True)
def _assign_numba(
    lin: np.ndarray, shape: np.ndarray, max_voxels: int, p: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Serial first-appearance numbering through an open-addressing hash of cell ids."""
    n = lin.shape[0]
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    cap = 1 << bits
    keys = np.full(cap, -1, np.int64)
    vals = np.empty(cap, np.int32)
    point_voxel = np.full(n, -1, np.int32)
    slot = np.full(n, -1, np.int32)
    nvox_cap = min(max_voxels, n)
    vox_lin = np.empty(nvox_cap, np.int64)
    counts = np.zeros(nvox_cap, np.int32)
    nvox = 0
    for i in range(n):
        k = lin[i]
        if k < 0:
            continue
        h = ((k * _HASH_MUL) >> (64 - bits)) & (cap - 1)
        while keys[h] != -1 and keys[h] != k:
            h = (h + 1) & (cap - 1)
        if keys[h] == -1:
            if nvox >= max_voxels:
                continue
            keys[h] = k
            vals[h] = nvox
            vox_lin[nvox] = k
            nvox += 1
        v = vals[h]
        point_voxel[i] = v
        if counts[v] < p:
            slot[i] = counts[v]
            counts[v] += 1
    nz = shape[2]
    ny = shape[1]
    coords = np.empty((nvox, 3), np.int32)
    for v in range(nvox):
        k = vox_lin[v]
        coords[v, 2] = k % nz
        coords[v, 1] = (k // nz) % ny
        coords[v, 0] = k // (nz * ny)
    return point_voxel, slot, coords, counts[:nvox].copy()


@numba.njit(cache=True, parallel=True)
def _fill_numba(
    pts: np.ndarray, point_voxel: np.ndarray, slot: np.ndarray, nvox: int, p: int
) -> np.ndarray:
    features = np.zeros((nvox, p, pts.shape[1]), np.float32)
    for i in numba.prange(pts.shape[0]):
        s = slot[i]
        if s >= 0:
            v = point_voxel[i]
            for k in range(pts.shape[1]):
                features[v, s, k] = pts[i, k]
    return features


def _host_points(points: Any) -> np.ndarray:
    pts = _backend.to_host(points)
    return pts if pts.dtype == np.float32 else pts.astype(np.float32)


# ---------------------------------------------------------------- public


def voxelize(
    points: Any,
    voxel_size: Any,
    point_range: Any,
    max_points_per_voxel: int,
    max_voxels: int,
    mode: VoxelMode = "hard",
    *,
    backend: Backend = "auto",
) -> HardVoxels | DynamicVoxels:
    """Group points (N, C) float32 (x, y, z in m first) into voxels.

    voxel_size: (3,) m; point_range: (x0, y0, z0, x1, y1, z1) m. Hard mode returns
    `HardVoxels` (features (V, P, C), coords (V, 3) int32 as (ix, iy, iz), num_points (V,));
    dynamic mode returns `DynamicVoxels` (coords and a per-point voxel index, no per-voxel cap
    on points). Other float dtypes are cast to float32 first.
    """
    _check(points, max_points_per_voxel, max_voxels)
    grid = _grid(voxel_size, point_range)
    which = _backend.resolve(backend, points)
    p = int(max_points_per_voxel)
    match which:
        case "numpy":
            pts = _host_points(points)
            if mode == "hard":
                return _like_hard(_hard_numpy(pts, grid, p, max_voxels), points)
            point_voxel, _, coords, num_nan = _assign_numpy(pts, grid, max_voxels)
            return _like_dynamic(DynamicVoxels(coords, point_voxel, num_nan), points)
        case "numba":
            pts = _host_points(points)
            lin, nan = _cells_numba(pts, grid.lo, grid.size, grid.shape)
            num_nan = int(nan.sum())
            cap = p if mode == "hard" else np.iinfo(np.int32).max
            point_voxel, slot, coords, counts = _assign_numba(lin, grid.shape, max_voxels, cap)
            if mode == "dynamic":
                return _like_dynamic(DynamicVoxels(coords, point_voxel, num_nan), points)
            features = _fill_numba(pts, point_voxel, slot, len(coords), p)
            return _like_hard(HardVoxels(features, coords, counts, num_nan), points)
        case "cuda":
            from kernels import _voxelize_cuda

            return _voxelize_cuda.voxelize_cuda(points, grid, p, max_voxels, mode)


def _like_hard(v: HardVoxels, ref: Any) -> HardVoxels:
    return HardVoxels(
        _backend.like(v.features, ref),
        _backend.like(v.coords, ref),
        _backend.like(v.num_points, ref),
        v.num_nan,
    )


def _like_dynamic(v: DynamicVoxels, ref: Any) -> DynamicVoxels:
    return DynamicVoxels(_backend.like(v.coords, ref), _backend.like(v.point_voxel, ref), v.num_nan)
