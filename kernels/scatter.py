"""Scatter per-voxel features to a dense bird's-eye-view map, summing voxels of one column."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import cuda

from kernels import _backend
from kernels._backend import Backend


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


@numba.njit(cache=True, parallel=True)
def _scatter_numba(features: np.ndarray, coords: np.ndarray, nx: int, ny: int) -> np.ndarray:
    v_count, c_count = features.shape
    out = np.zeros((c_count, ny, nx), features.dtype)
    # one channel per thread: voxels are summed in index order, as the numpy oracle does
    for c in numba.prange(c_count):
        for v in range(v_count):
            ix = coords[v, 0]
            iy = coords[v, 1]
            if ix >= 0 and ix < nx and iy >= 0 and iy < ny:
                out[c, iy, ix] += features[v, c]
    return out


@cuda.jit
def _column_heads_cuda(coords: Any, nx: int, ny: int, head: Any) -> None:
    """head[cell] = lowest voxel index in the column (or stays V)."""
    v = cuda.grid(1)
    if v >= coords.shape[0]:
        return
    ix = coords[v, 0]
    iy = coords[v, 1]
    if ix >= 0 and ix < nx and iy >= 0 and iy < ny:
        cuda.atomic.min(head, iy * nx + ix, v)


@cuda.jit
def _scatter_cuda(features: Any, coords: Any, nx: int, ny: int, head: Any, out: Any) -> None:
    """One thread per (head voxel, channel) sums its column's voxels in index order."""
    t = cuda.grid(1)
    v_count = features.shape[0]
    c_count = features.shape[1]
    if t >= v_count * c_count:
        return
    v = t // c_count
    c = t - v * c_count
    ix = coords[v, 0]
    iy = coords[v, 1]
    if not (ix >= 0 and ix < nx and iy >= 0 and iy < ny):
        return
    cell = iy * nx + ix
    if head[cell] != v:
        return
    acc = features[v, c]
    for u in range(v + 1, v_count):
        if coords[u, 0] == ix and coords[u, 1] == iy:
            acc += features[u, c]
    out[c, iy, ix] = acc


def scatter_bev(features: Any, coords: Any, grid: tuple[int, int], *, backend: Backend = "auto") -> Any:
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
            d_f = _backend.to_device(features)
            d_c = _backend.to_device(coords)
            v_count, c_count = d_f.shape
            head = cuda.to_device(np.full(ny * nx, max(v_count, 1), np.int64))
            out = cuda.to_device(np.zeros((c_count, ny, nx), d_f.dtype))
            if v_count and c_count:
                _column_heads_cuda[_backend.blocks(v_count), _backend.THREADS_PER_BLOCK](
                    d_c, nx, ny, head
                )
                n = v_count * c_count
                _scatter_cuda[_backend.blocks(n), _backend.THREADS_PER_BLOCK](
                    d_f, d_c, nx, ny, head, out
                )
    return _backend.like(out, features)
