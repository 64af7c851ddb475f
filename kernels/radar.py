"""Radar points to a BEV raster: per-cell mean of every feature column plus a count channel."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import cuda, float32

from kernels import _backend, _cuda_segments
from kernels._backend import KernelBackend


def _grid(bev_range: Any, cell_size: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.asarray(bev_range, np.float32).reshape(6)
    size = np.asarray(cell_size, np.float32).reshape(3)
    lo, hi = rng[:3], rng[3:]
    if not (np.all(size > 0) and np.all(hi > lo)):
        raise ValueError(f"bad bev_range {bev_range} or cell_size {cell_size}")
    shape = np.array([math.floor(float(q) + 0.5) for q in (hi - lo) / size], np.int64)
    return lo, size, shape


def _cells_numpy(
    pts: np.ndarray, lo: np.ndarray, size: np.ndarray, shape: np.ndarray
) -> np.ndarray:
    """Cell iy * nx + ix of each point (float32 arithmetic, as voxelize), -1 outside or NaN."""
    cell = np.floor((pts[:, :3] - lo) / size)
    inside = np.all((cell >= 0) & (cell < shape), axis=1)
    out = np.full(pts.shape[0], -1, np.int64)
    c = cell[inside].astype(np.int64)
    out[inside] = c[:, 1] * shape[0] + c[:, 0]
    return out


def _raster_numpy(
    pts: np.ndarray, lo: np.ndarray, size: np.ndarray, shape: np.ndarray
) -> np.ndarray:
    nx, ny = int(shape[0]), int(shape[1])
    c = pts.shape[1]
    cell = _cells_numpy(pts, lo, size, shape)
    use = cell >= 0
    sums = np.zeros((ny * nx, c), np.float32)
    np.add.at(sums, cell[use], pts[use])
    count = np.bincount(cell[use], minlength=ny * nx).astype(np.float32)
    out = np.zeros((c + 1, ny * nx), np.float32)
    nz = count > 0
    out[:c, nz] = (sums[nz] / count[nz, None]).T
    out[c] = count
    return out.reshape(c + 1, ny, nx)


@numba.njit(cache=True)
def _raster_numba(
    pts: np.ndarray, lo: np.ndarray, size: np.ndarray, shape: np.ndarray
) -> np.ndarray:
    nx = shape[0]
    ny = shape[1]
    c_count = pts.shape[1]
    out = np.zeros((c_count + 1, ny, nx), np.float32)
    for i in range(pts.shape[0]):
        inside = True
        ix = 0
        iy = 0
        for j in range(3):
            q = np.float32(pts[i, j] - lo[j]) / size[j]
            if not (q >= 0 and q < shape[j]):
                inside = False
                break
            if j == 0:
                ix = int(math.floor(q))
            elif j == 1:
                iy = int(math.floor(q))
        if not inside:
            continue
        for k in range(c_count):
            out[k, iy, ix] += pts[i, k]
        out[c_count, iy, ix] += 1
    for iy in range(ny):
        for ix in range(nx):
            n = out[c_count, iy, ix]
            if n > 0:
                for k in range(c_count):
                    out[k, iy, ix] = out[k, iy, ix] / n
    return out


@cuda.jit
def _cells_cuda(pts: Any, lo: Any, size: Any, shape: Any, cells: Any) -> None:
    i = cuda.grid(1)
    if i >= pts.shape[0]:
        return
    ix = 0
    iy = 0
    for j in range(3):
        q = (float32(pts[i, j]) - lo[j]) / size[j]
        if not (q >= 0 and q < shape[j]):
            cells[i] = -1
            return
        if j == 0:
            ix = int(math.floor(q))
        elif j == 1:
            iy = int(math.floor(q))
    cells[i] = iy * shape[0] + ix


@cuda.jit
def _mean_cuda(pts: Any, counts: Any, offsets: Any, members: Any, out: Any) -> None:
    """One thread per (channel, cell): points summed in index order, then divided."""
    t = cuda.grid(1)
    c_all = out.shape[0]
    ny = out.shape[1]
    nx = out.shape[2]
    if t >= c_all * ny * nx:
        return
    k = t // (ny * nx)
    cell = t - k * (ny * nx)
    iy = cell // nx
    ix = cell - iy * nx
    n = counts[cell]
    if k == c_all - 1:
        out[k, iy, ix] = float32(n)
        return
    acc = float32(0.0)
    base = offsets[cell]
    for j in range(base, base + n):
        acc += float32(pts[members[j], k])
    out[k, iy, ix] = acc / float32(n) if n > 0 else float32(0.0)


def rasterize_radar(
    points: Any, bev_range: Any, cell_size: Any, *, backend: KernelBackend = "auto"
) -> Any:
    """BEV raster (C + 1, ny, nx) float32 of radar points (N, C) (x, y, z in m first).

    Channels 0..C-1 are the mean of each point column over the points in the cell (0 where
    empty, summed in float32 in point order); channel C is the point count. The grid is
    round((x1 - x0) / dx) x round((y1 - y0) / dy); a point is binned with the float32
    floor((p - lo) / size) of voxelize, and dropped when outside [lo, hi) on any axis (z only
    gates) or when x, y or z is NaN.
    """
    shape_in = tuple(points.shape)
    if len(shape_in) != 2 or shape_in[1] < 3:
        raise ValueError(f"points must be (N, C>=3), got {shape_in}")
    lo, size, shape = _grid(bev_range, cell_size)
    which = _backend.resolve(backend, points)
    match which:
        case "numpy":
            out = _raster_numpy(_backend.to_host(points, np.float32), lo, size, shape)
        case "numba":
            out = _raster_numba(_backend.to_host(points, np.float32), lo, size, shape)
        case "cuda":
            d_pts = _backend.to_device(points, np.float32)
            n = d_pts.shape[0]
            nx, ny = int(shape[0]), int(shape[1])
            cells = cuda.device_array(n, np.int64)
            if n:
                _cells_cuda[_backend.blocks(n), _backend.THREADS_PER_BLOCK](
                    d_pts, cuda.to_device(lo), cuda.to_device(size), cuda.to_device(shape), cells
                )
            seg = _cuda_segments.group_by_key(cells, ny * nx)
            out = cuda.device_array((d_pts.shape[1] + 1, ny, nx), np.float32)
            m = out.size
            _mean_cuda[_backend.blocks(m), _backend.THREADS_PER_BLOCK](
                d_pts, seg.counts, seg.offsets, seg.members, out
            )
    return _backend.like(out, points)
