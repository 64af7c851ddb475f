"""Point cloud to voxels, with the semantics of spconv's `PointToVoxel` (CPU).

A point's cell is floor((p - lo) / size) per axis, computed in float32 as spconv does; the grid
has round((hi - lo) / size) cells per axis and a point whose cell falls outside it is dropped
(so "outside [lo, hi)" is decided on the float32 cell, exactly as spconv decides it). Voxels are
numbered in the order their first point appears, points keep input order inside a voxel, and
points past `max_points_per_voxel` or in voxels past `max_voxels` are dropped.

NaN: a point with a NaN in x, y or z is dropped like an out-of-range point and counted in
`num_nan` of the result (NaN in the other feature columns is carried as a value).

`exclude`: an axis-aligned box (x0, y0, z0, x1, y1, z1) in m whose points are dropped like
out-of-range points (the ego vehicle's own returns): closed, and decided exactly as comparing
the float32 coordinates with the float64 bounds (`inside_box`, the oracle), in every backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
from numba import cuda, float32, int64

from kernels import _backend, _cuda_segments
from kernels._backend import KernelBackend

VoxelMode = Literal["hard", "dynamic"]

# Knuth's multiplicative hash on 32 bits (2^32 / golden ratio); keys are folded to 31 bits
# first so the product never overflows int64.
_HASH_MUL = 2654435761


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


def box_bounds(box: Any) -> tuple[np.ndarray, np.ndarray]:
    """A box (x0, y0, z0, x1, y1, z1) in m -> float32 (lo, hi), each rounded inwards, so that
    `lo <= p <= hi` in float32 is exactly `box[:3] <= p <= box[3:]` in float64 for any float32
    p (a bound rounded outwards would take in the float32 values just outside the box)."""
    b = np.asarray(box, np.float64).reshape(6)
    lo, hi = b[:3].astype(np.float32), b[3:].astype(np.float32)
    lo = np.where(lo < b[:3], np.nextafter(lo, np.float32(np.inf)), lo)
    hi = np.where(hi > b[3:], np.nextafter(hi, np.float32(-np.inf)), hi)
    return lo.astype(np.float32), hi.astype(np.float32)


def inside_box(points: Any, box: Any) -> np.ndarray:
    """(N,) True for the points (N, >=3), x y z first, inside the closed box (x0, y0, z0, x1,
    y1, z1): per column (no float64 copy of a float32 cloud), float32 points against the
    bounds of `box_bounds`; NaN is outside."""
    pts = np.asarray(points)
    if pts.dtype == np.float32:
        lo, hi = box_bounds(box)
    else:
        b = np.asarray(box, np.float64).reshape(6)
        lo, hi = b[:3], b[3:]
    inside = np.ones(len(pts), bool)
    for axis in range(3):
        column = pts[:, axis]
        inside &= column >= lo[axis]
        inside &= column <= hi[axis]
    return inside


def _exclusion(exclude: Any) -> np.ndarray:
    """(6,) float32 lo and hi of the excluded box for the kernels; for none, an empty box
    (lo +inf, hi -inf) that holds no point."""
    if exclude is None:
        return np.array([np.inf] * 3 + [-np.inf] * 3, np.float32)
    return np.concatenate(box_bounds(exclude))


def _check(points: Any, max_points_per_voxel: int, max_voxels: int) -> None:
    shape = tuple(points.shape)
    if len(shape) != 2 or shape[1] < 3:
        raise ValueError(f"points must be (N, C>=3), got {shape}")
    if max_points_per_voxel < 1 or max_voxels < 0:
        raise ValueError("max_points_per_voxel must be >= 1 and max_voxels >= 0")


# ---------------------------------------------------------------- numpy reference (the oracle)


def _assign_numpy(
    pts: np.ndarray, grid: _Grid, max_voxels: int, exclude: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-point voxel index (-1 dropped), slot in its voxel, voxel coords, NaN count."""
    n = pts.shape[0]
    xyz = pts[:, :3]
    cell = np.floor((xyz - grid.lo) / grid.size)  # float32 throughout, as spconv
    valid = np.all((cell >= 0) & (cell < grid.shape), axis=1)
    if exclude is not None:
        valid &= ~inside_box(pts, exclude)
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


def _hard_numpy(
    pts: np.ndarray, grid: _Grid, p: int, max_voxels: int, exclude: Any = None
) -> HardVoxels:
    point_voxel, slot, coords, num_nan = _assign_numpy(pts, grid, max_voxels, exclude)
    use = (point_voxel >= 0) & (slot < p)
    features = np.zeros((len(coords), p, pts.shape[1]), np.float32)
    features[point_voxel[use], slot[use]] = pts[use]
    num_points = np.bincount(point_voxel[use], minlength=len(coords)).astype(np.int32)
    return HardVoxels(features, coords, num_points, num_nan)


# ---------------------------------------------------------------- numba CPU


# Three passes, each over the points once: cell ids (parallel), voxel numbering (serial: voxels
# are numbered in the order their first point appears, as spconv's CPU loop) and the feature copy
# (parallel). The per-point arrays are int32 where the grid allows: on the 2-core target the
# passes are bound by memory traffic, not arithmetic.


@numba.njit(cache=True, parallel=True)
def _cells_numba(
    pts: np.ndarray,
    lo: np.ndarray,
    size: np.ndarray,
    shape: np.ndarray,
    box: np.ndarray,
    out: np.ndarray,
) -> None:
    """Linear cell id (ix * ny + iy) * nz + iz of every point into `out` (int32 or int64,
    wide enough for the grid); -1 outside the range or inside the excluded box (`box`: the
    float32 lo and hi of `_exclusion`), -2 NaN."""
    n = pts.shape[0]
    lo0, lo1, lo2 = lo[0], lo[1], lo[2]
    s0, s1, s2 = size[0], size[1], size[2]
    nx, ny, nz = shape[0], shape[1], shape[2]
    b0, b1, b2, b3, b4, b5 = box[0], box[1], box[2], box[3], box[4], box[5]
    for i in numba.prange(n):
        x = np.float32(pts[i, 0])
        y = np.float32(pts[i, 1])
        z = np.float32(pts[i, 2])
        if x != x or y != y or z != z:
            out[i] = -2
            continue
        if b0 <= x <= b3 and b1 <= y <= b4 and b2 <= z <= b5:
            out[i] = -1
            continue
        qx = np.float32(x - lo0) / s0
        qy = np.float32(y - lo1) / s1
        qz = np.float32(z - lo2) / s2
        # float comparisons reject huge values before the integer casts
        if not (qx >= 0 and qx < nx and qy >= 0 and qy < ny and qz >= 0 and qz < nz):
            out[i] = -1
            continue
        # q >= 0 here, so truncation is floor (and much cheaper than math.floor's libm call)
        out[i] = (np.int64(qx) * ny + np.int64(qy)) * nz + np.int64(qz)


@numba.njit(cache=True, parallel=True)
def _fill_features_numba(pts: np.ndarray, row: np.ndarray, features: np.ndarray) -> None:
    """Copy each kept point into its row v * P + slot of `features` (V, P, C); every row has
    one writer."""
    c_count = pts.shape[1]
    rows = features.reshape(-1, c_count)
    for i in numba.prange(pts.shape[0]):
        r = row[i]
        if r >= 0:
            for c in range(c_count):
                rows[r, c] = pts[i, c]


@numba.njit(cache=True)
def _voxelize_numba(
    lin: np.ndarray,
    shape: np.ndarray,
    max_voxels: int,
    p: int,
    hard: bool,
    assign: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """From the cell ids of `_cells_numba`, in input order: coords (V, 3), counts (V,), V and
    the NaN count; `assign` (N,) receives each point's voxel (dynamic) or, when `hard`, its
    feature row v * p + slot (the point's place in its voxel), -1 for points dropped (outside,
    NaN, past max_voxels or, when hard, past the p-th point of the voxel). Cell -> voxel
    lookups go through a dense table when the grid is small (as spconv's; pillars: 512 x 512
    int32 = 1 MB, cache resident), else an open-addressing hash of the cell ids sized 2N."""
    n = lin.shape[0]
    total = shape[0] * shape[1] * shape[2]
    dense = total <= max(4 * n, 1 << 20)
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    cap = total if dense else 1 << bits
    keys = np.full(0 if dense else cap, -1, np.int64)
    vals = np.full(cap, -1, np.int32)
    nvox_cap = min(max_voxels, n)
    coords = np.empty((nvox_cap, 3), np.int32)
    counts = np.zeros(nvox_cap, np.int32)
    nvox = 0
    num_nan = 0
    ny, nz = shape[1], shape[2]
    for i in range(n):
        k = lin[i]
        assign[i] = -1
        if k < 0:
            if k == -2:
                num_nan += 1
            continue
        if dense:
            h = k
        else:
            k31 = (k ^ (k >> 31)) & 0x7FFFFFFF
            h = ((k31 * _HASH_MUL) & 0xFFFFFFFF) >> (32 - bits)
            while keys[h] != -1 and keys[h] != k:
                h = (h + 1) & (cap - 1)
        v = vals[h]
        if v == -1:
            if nvox >= max_voxels:
                continue
            if not dense:
                keys[h] = k
            v = nvox
            vals[h] = v
            coords[v, 0] = k // (ny * nz)
            coords[v, 1] = (k // nz) % ny
            coords[v, 2] = k % nz
            nvox += 1
        s = counts[v]
        if not hard:
            counts[v] = s + 1
            assign[i] = v
        elif s < p:
            counts[v] = s + 1
            assign[i] = v * p + s
    return coords[:nvox].copy(), counts[:nvox].copy(), nvox, num_nan


def _index_dtype(limit: int) -> type:
    """int32 where every value fits (half the memory traffic of int64), else int64."""
    return np.int32 if limit < np.iinfo(np.int32).max else np.int64


# ---------------------------------------------------------------- numba CUDA


@cuda.jit
def _cells_cuda(
    pts: Any, lo: Any, size: Any, shape: Any, box: Any, lin: Any, nan_count: Any
) -> None:
    i = cuda.grid(1)
    if i >= pts.shape[0]:
        return
    if pts[i, 0] != pts[i, 0] or pts[i, 1] != pts[i, 1] or pts[i, 2] != pts[i, 2]:
        lin[i] = -1
        cuda.atomic.add(nan_count, 0, 1)
        return
    inside = True
    for j in range(3):
        c = float32(pts[i, j])
        if not (c >= box[j] and c <= box[j + 3]):
            inside = False
    if inside:
        lin[i] = -1
        return
    lid = int64(0)
    for j in range(3):
        # sub and div are never fused, so float32 rounding matches the CPU exactly
        q = (float32(pts[i, j]) - lo[j]) / size[j]
        if not (q >= 0 and q < shape[j]):
            lid = int64(-1)
            break
        lid = lid * shape[j] + int64(math.floor(q))
    lin[i] = lid


@cuda.jit
def _insert_cuda(lin: Any, keys: Any, first: Any, bits: int, hslot: Any) -> None:
    """Insert each point's cell into the hash; first[slot] = lowest point index of the cell."""
    i = cuda.grid(1)
    if i >= lin.shape[0]:
        return
    k = lin[i]
    if k < 0:
        hslot[i] = -1
        return
    mask = (int64(1) << bits) - 1
    k31 = (k ^ (k >> 31)) & 0x7FFFFFFF
    h = ((k31 * _HASH_MUL) & 0xFFFFFFFF) >> (32 - bits)
    while True:
        old = cuda.atomic.cas(keys, h, int64(-1), k)
        if old == -1 or old == k:
            break
        h = (h + 1) & mask
    hslot[i] = h
    cuda.atomic.min(first, h, i)


@cuda.jit
def _heads_cuda(hslot: Any, first: Any, head: Any) -> None:
    i = cuda.grid(1)
    if i < hslot.shape[0]:
        h = hslot[i]
        head[i] = 1 if (h >= 0 and first[h] == i) else 0


@cuda.jit
def _voxel_ids_cuda(
    lin: Any,
    hslot: Any,
    first: Any,
    vrank: Any,
    shape: Any,
    max_voxels: int,
    point_voxel: Any,
    coords: Any,
) -> None:
    i = cuda.grid(1)
    if i >= lin.shape[0]:
        return
    h = hslot[i]
    v = int64(-1)
    if h >= 0:
        v = vrank[first[h]]
        if v >= max_voxels:
            v = -1
    point_voxel[i] = v
    if v >= 0 and first[h] == i:
        k = lin[i]
        nz = shape[2]
        ny = shape[1]
        coords[v, 2] = k % nz
        coords[v, 1] = (k // nz) % ny
        coords[v, 0] = k // (nz * ny)


@cuda.jit
def _fill_cuda(pts: Any, point_voxel: Any, rank: Any, features: Any) -> None:
    i = cuda.grid(1)
    if i >= pts.shape[0]:
        return
    v = point_voxel[i]
    r = rank[i]
    if v >= 0 and r < features.shape[1]:
        for k in range(pts.shape[1]):
            features[v, r, k] = pts[i, k]


@cuda.jit
def _num_points_cuda(counts: Any, p: int, num_points: Any) -> None:
    v = cuda.grid(1)
    if v < num_points.shape[0]:
        # no builtin min: numba's CUDA target types it as a device function that fails here
        num_points[v] = counts[v] if counts[v] < p else p


def _voxelize_cuda(
    points: Any, grid: _Grid, p: int, max_voxels: int, mode: VoxelMode, box: np.ndarray
) -> HardVoxels | DynamicVoxels:
    """Same numbering as the CPU: a hash finds each cell's lowest point index, a scan over the
    first-point flags numbers the voxels in order of appearance, and a stable group-by gives
    each point its slot."""
    seg = _cuda_segments
    d_pts = _backend.to_device(points)
    n = d_pts.shape[0]
    nb, tpb = _backend.blocks(n), _backend.THREADS_PER_BLOCK
    lin = cuda.device_array(n, np.int64)
    nan_count = cuda.to_device(np.zeros(1, np.int64))
    shape = cuda.to_device(grid.shape)
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    keys = seg.full(1 << bits, -1, np.int64)
    first = seg.full(1 << bits, np.iinfo(np.int32).max, np.int32)
    hslot = cuda.device_array(n, np.int64)
    head = cuda.device_array(n, np.int32)
    if n:
        _cells_cuda[nb, tpb](
            d_pts,
            cuda.to_device(grid.lo),
            cuda.to_device(grid.size),
            shape,
            cuda.to_device(box),
            lin,
            nan_count,
        )
        _insert_cuda[nb, tpb](lin, keys, first, bits, hslot)
        _heads_cuda[nb, tpb](hslot, first, head)
    vrank, total = seg.exclusive_scan(head)
    nvox = min(int(total.copy_to_host()[0]), max_voxels)
    point_voxel = cuda.device_array(n, np.int32)
    coords = cuda.device_array((nvox, 3), np.int32)
    if n:
        _voxel_ids_cuda[nb, tpb](lin, hslot, first, vrank, shape, max_voxels, point_voxel, coords)
    num_nan = int(nan_count.copy_to_host()[0])
    if mode == "dynamic":
        return _like_dynamic(DynamicVoxels(coords, point_voxel, num_nan), points)
    groups = seg.group_by_key(point_voxel, nvox)
    features = seg.zeros((nvox, p, d_pts.shape[1]), np.float32)
    num_points = cuda.device_array(nvox, np.int32)
    if n:
        _fill_cuda[nb, tpb](d_pts, point_voxel, groups.rank, features)
    if nvox:
        _num_points_cuda[_backend.blocks(nvox), tpb](groups.counts, p, num_points)
    return _like_hard(HardVoxels(features, coords, num_points, num_nan), points)


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
    exclude: Any = None,
    backend: KernelBackend = "auto",
) -> HardVoxels | DynamicVoxels:
    """Group points (N, C) float32 (x, y, z in m first) into voxels.

    voxel_size: (3,) m; point_range: (x0, y0, z0, x1, y1, z1) m; `exclude`: None or a box
    (x0, y0, z0, x1, y1, z1) m whose points are dropped (see the module docstring). Hard mode
    returns `HardVoxels` (features (V, P, C), coords (V, 3) int32 as (ix, iy, iz), num_points (V,));
    dynamic mode returns `DynamicVoxels` (coords and a per-point voxel index, no per-voxel cap
    on points). Other float dtypes are cast to float32 first.
    """
    _check(points, max_points_per_voxel, max_voxels)
    grid = _grid(voxel_size, point_range)
    which = _backend.resolve(backend, points)
    p = int(max_points_per_voxel)
    box = _exclusion(exclude)
    match which:
        case "numpy":
            pts = _host_points(points)
            if mode == "hard":
                return _like_hard(_hard_numpy(pts, grid, p, max_voxels, exclude), points)
            point_voxel, _, coords, num_nan = _assign_numpy(pts, grid, max_voxels, exclude)
            return _like_dynamic(DynamicVoxels(coords, point_voxel, num_nan), points)
        case "numba":
            pts = _host_points(points)
            hard = mode == "hard"
            n = pts.shape[0]
            lin = np.empty(n, _index_dtype(int(np.prod(grid.shape))))
            _cells_numba(pts, grid.lo, grid.size, grid.shape, box, lin)
            assign = np.empty(n, _index_dtype(min(max_voxels, n) * p if hard else n))
            coords, counts, nvox, num_nan = _voxelize_numba(
                lin, grid.shape, max_voxels, p, hard, assign
            )
            if not hard:
                return _like_dynamic(DynamicVoxels(coords, assign, num_nan), points)
            # features sized by the voxels found (not by max_voxels, as spconv)
            features = np.zeros((nvox, p, pts.shape[1]), np.float32)
            _fill_features_numba(pts, assign, features)
            return _like_hard(HardVoxels(features, coords, counts, num_nan), points)
        case "cuda":
            return _voxelize_cuda(points, grid, p, max_voxels, mode, box)


def _like_hard(v: HardVoxels, ref: Any) -> HardVoxels:
    return HardVoxels(
        _backend.like(v.features, ref),
        _backend.like(v.coords, ref),
        _backend.like(v.num_points, ref),
        v.num_nan,
    )


def _like_dynamic(v: DynamicVoxels, ref: Any) -> DynamicVoxels:
    return DynamicVoxels(_backend.like(v.coords, ref), _backend.like(v.point_voxel, ref), v.num_nan)
