"""Scatter per-voxel features to a dense bird's-eye-view map, summing voxels of one column."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import cuda

from kernels import _backend, _cuda_segments
from kernels._backend import KernelBackend


def _check(features: Any, coords: Any, grid: tuple[int, int]) -> tuple[int, int]:
    fs, cs = tuple(features.shape), tuple(coords.shape)
    if len(fs) != 2 or len(cs) != 2 or cs[1] != 3 or cs[0] != fs[0]:
        raise ValueError(f"features must be (V, C) and coords (V, 3), got {fs} and {cs}")
    nx, ny = int(grid[0]), int(grid[1])
    if nx < 1 or ny < 1:
        raise ValueError(f"grid must be positive (nx, ny), got {grid}")
    return nx, ny


def _scatter_numpy(features: np.ndarray, coords: np.ndarray, nx: int, ny: int) -> np.ndarray:
    c = features.shape[1]
    inside = (coords[:, 0] >= 0) & (coords[:, 0] < nx) & (coords[:, 1] >= 0) & (coords[:, 1] < ny)
    flat = np.zeros((ny * nx, c), features.dtype)
    cell = coords[inside, 1].astype(np.int64) * nx + coords[inside, 0]
    np.add.at(flat, cell, features[inside])
    return np.ascontiguousarray(flat.T).reshape(c, ny, nx)


@numba.njit(cache=True)
def _scatter_numba(features: np.ndarray, coords: np.ndarray, nx: int, ny: int) -> np.ndarray:
    v_count, c_count = features.shape
    out = np.zeros((c_count, ny, nx), features.dtype)
    key = np.empty(v_count, np.int64)
    for v in range(v_count):
        ix = coords[v, 0]
        iy = coords[v, 1]
        key[v] = iy * nx + ix if (ix >= 0 and ix < nx and iy >= 0 and iy < ny) else -1
    # a stable sort by cell keeps the voxel order within a column (bit-equal sums with the
    # oracle) and makes each channel plane's writes ascend through memory
    order = np.argsort(key, kind="mergesort")
    flat = out.reshape(c_count, ny * nx)
    for c in range(c_count):
        for k in range(v_count):
            v = order[k]
            cell = key[v]
            if cell >= 0:
                flat[c, cell] += features[v, c]
    return out


@cuda.jit
def _column_keys_cuda(coords: Any, nx: int, ny: int, keys: Any) -> None:
    v = cuda.grid(1)
    if v < coords.shape[0]:
        ix = coords[v, 0]
        iy = coords[v, 1]
        keys[v] = iy * nx + ix if (ix >= 0 and ix < nx and iy >= 0 and iy < ny) else -1


@cuda.jit
def _sum_columns_cuda(
    features: Any, counts: Any, offsets: Any, members: Any, zero: Any, out: Any
) -> None:
    """One thread per (channel, cell): its column's voxels summed in voxel order."""
    t = cuda.grid(1)
    c_count = out.shape[0]
    ny = out.shape[1]
    nx = out.shape[2]
    if t >= c_count * ny * nx:
        return
    c = t // (ny * nx)
    cell = t - c * (ny * nx)
    acc = zero[0]  # typed like the features, so sums round as the oracle's
    base = offsets[cell]
    for j in range(base, base + counts[cell]):
        acc += features[members[j], c]
    iy = cell // nx
    out[c, iy, cell - iy * nx] = acc


def _scatter_cuda(features: Any, coords: Any, nx: int, ny: int) -> Any:
    d_f = _backend.to_device(features)
    d_c = _backend.to_device(coords)
    v_count, c_count = d_f.shape
    out = cuda.device_array((c_count, ny, nx), d_f.dtype)
    keys = cuda.device_array(v_count, np.int64)
    if v_count:
        _column_keys_cuda[_backend.blocks(v_count), _backend.THREADS_PER_BLOCK](d_c, nx, ny, keys)
    seg = _cuda_segments.group_by_key(keys, ny * nx)
    n = out.size
    if n:
        _sum_columns_cuda[_backend.blocks(n), _backend.THREADS_PER_BLOCK](
            d_f,
            seg.counts,
            seg.offsets,
            seg.members,
            _cuda_segments.zero_scalar(d_f.dtype.str),
            out,
        )
    return out


def scatter_bev(
    features: Any, coords: Any, grid: tuple[int, int], *, backend: KernelBackend = "auto"
) -> Any:
    """Dense BEV map (C, ny, nx) from voxel features (V, C) at coords (V, 3) int (ix, iy, iz).

    Voxels sharing a column (ix, iy) are summed in voxel order; voxels outside the grid are
    ignored. dtype follows `features`; the result is like `features` (numpy/tensor/device).
    """
    nx, ny = _check(features, coords, grid)
    which = _backend.resolve(backend, features, coords)
    match which:
        case "numpy":
            out = _scatter_numpy(_backend.to_host(features), _backend.to_host(coords), nx, ny)
        case "numba":
            out = _scatter_numba(_backend.to_host(features), _backend.to_host(coords), nx, ny)
        case "cuda":
            out = _scatter_cuda(features, coords, nx, ny)
    return _backend.like(out, features)
