"""Which points lie in which yaw-rotated 3D boxes.

Boxes are (M, 7) = x, y, z (centre), l (along the heading), w, h, yaw (rad about +z), in m, in
the frame of the points. A point is inside when, in the box frame,
|local x| <= l/2, |local y| <= w/2 and |z - zc| <= h/2 (boundaries inclusive, as the devkit's
`points_in_box`). All tests run in float64; cos and sin of the yaws are taken once on the host
so every backend rounds identically. A point with a NaN coordinate is in no box.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import cuda, float64

from kernels import _backend
from kernels._backend import KernelBackend
from kernels._cudamath import dadd, dmul


def _check_points(points: Any) -> None:
    shape = tuple(points.shape)
    if len(shape) != 2 or shape[1] < 3:
        raise ValueError(f"points must be (N, >=3), got {shape}")


def _host_points(points: Any) -> np.ndarray:
    """Host points, float32 or float64 kept as they are (the kernels widen each coordinate)."""
    pts = _backend.to_host(points)
    if pts.dtype not in (np.float32, np.float64):
        pts = pts.astype(np.float64)
    return pts


def _table(boxes: Any) -> np.ndarray:
    """(M, 8) float64 rows: x, y, z, l/2, w/2, h/2, cos(yaw), sin(yaw)."""
    bx = _backend.to_host(boxes, np.float64)
    if bx.ndim != 2 or bx.shape[1] != 7:
        raise ValueError(f"boxes must be (M, 7), got {bx.shape}")
    table = np.empty((bx.shape[0], 8), np.float64)
    table[:, 0:3] = bx[:, 0:3]
    table[:, 3:6] = bx[:, 3:6] * 0.5
    table[:, 6] = np.cos(bx[:, 6])
    table[:, 7] = np.sin(bx[:, 6])
    return table


def _inside_numpy(pts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(N, M) bool: point n inside box m (the oracle)."""
    pts = pts[:, :3].astype(np.float64)
    dx = pts[:, 0:1] - table[None, :, 0]
    dy = pts[:, 1:2] - table[None, :, 1]
    dz = pts[:, 2:3] - table[None, :, 2]
    lx = dx * table[None, :, 6] + dy * table[None, :, 7]
    ly = dy * table[None, :, 6] - dx * table[None, :, 7]
    return (np.abs(lx) <= table[:, 3]) & (np.abs(ly) <= table[:, 4]) & (np.abs(dz) <= table[:, 5])


@numba.njit(cache=True, inline="always")
def _inside(px: float, py: float, pz: float, table: np.ndarray, m: int) -> bool:
    dz = np.float64(pz) - table[m, 2]
    if not abs(dz) <= table[m, 5]:
        return False
    dx = np.float64(px) - table[m, 0]
    dy = np.float64(py) - table[m, 1]
    lx = dx * table[m, 6] + dy * table[m, 7]
    if not abs(lx) <= table[m, 3]:
        return False
    ly = dy * table[m, 6] - dx * table[m, 7]
    return abs(ly) <= table[m, 4]


# The Numba CPU kernels bin the points once into a coarse 2-D grid (a counting sort, index order
# kept within a bin) and test each box only against the points in the bins its axis-aligned
# bounding rectangle covers: O(N + points near boxes) instead of O(N * M). The exact test is the
# same `_inside` as everywhere, so the bins only skip points that cannot be inside.


@numba.njit(cache=True)
def _bin_points(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, float, int, int]:
    """(order, starts, x0, y0, cell, nx, ny): points with finite x, y, z sorted by bin."""
    n = pts.shape[0]
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    for i in range(n):
        x = np.float64(pts[i, 0])
        y = np.float64(pts[i, 1])
        if x == x and y == y and pts[i, 2] == pts[i, 2] and abs(x) < np.inf and abs(y) < np.inf:
            x0 = min(x0, x)
            x1 = max(x1, x)
            y0 = min(y0, y)
            y1 = max(y1, y)
    if not x0 <= x1:
        return np.empty(0, np.int32), np.zeros(2, np.int64), 0.0, 0.0, 1.0, 1, 1
    cell = max(2.0, (x1 - x0) / 512.0, (y1 - y0) / 512.0)
    nx = int((x1 - x0) / cell) + 1
    ny = int((y1 - y0) / cell) + 1
    starts = np.zeros(nx * ny + 1, np.int64)
    bins = np.full(n, -1, np.int64)
    for i in range(n):
        x = np.float64(pts[i, 0])
        y = np.float64(pts[i, 1])
        if x == x and y == y and pts[i, 2] == pts[i, 2] and abs(x) < np.inf and abs(y) < np.inf:
            b = min(int((x - x0) / cell), nx - 1) * ny + min(int((y - y0) / cell), ny - 1)
            bins[i] = b
            starts[b + 1] += 1
    for b in range(nx * ny):
        starts[b + 1] += starts[b]
    cursor = starts[:-1].copy()
    order = np.empty(starts[nx * ny], np.int32)
    for i in range(n):
        b = bins[i]
        if b >= 0:
            order[cursor[b]] = i
            cursor[b] += 1
    return order, starts, x0, y0, cell, nx, ny


@numba.njit(cache=True, inline="always")
def _bin_range(c: float, half: float, lo: float, cell: float, n: int) -> tuple[int, int]:
    pad = 1e-6 * (1.0 + abs(c) + half)  # covers rounding of the rotated extent
    a = math.floor((c - half - pad - lo) / cell)
    b = math.floor((c + half + pad - lo) / cell)
    return max(a, 0), min(b, n - 1)


@numba.njit(cache=True)
def _first_box_numba(pts: np.ndarray, table: np.ndarray) -> np.ndarray:
    out = np.full(pts.shape[0], -1, np.int32)
    order, starts, x0, y0, cell, nx, ny = _bin_points(pts)
    for m in range(table.shape[0]):
        ex = abs(table[m, 3] * table[m, 6]) + abs(table[m, 4] * table[m, 7])
        ey = abs(table[m, 3] * table[m, 7]) + abs(table[m, 4] * table[m, 6])
        ia, ib = _bin_range(table[m, 0], ex, x0, cell, nx)
        ja, jb = _bin_range(table[m, 1], ey, y0, cell, ny)
        for ix in range(ia, ib + 1):
            for iy in range(ja, jb + 1):
                b = ix * ny + iy
                for k in range(starts[b], starts[b + 1]):
                    i = order[k]
                    if out[i] == -1 and _inside(pts[i, 0], pts[i, 1], pts[i, 2], table, m):
                        out[i] = m
    return out


@numba.njit(cache=True)
def _count_numba(pts: np.ndarray, table: np.ndarray) -> np.ndarray:
    out = np.zeros(table.shape[0], np.int32)
    order, starts, x0, y0, cell, nx, ny = _bin_points(pts)
    for m in range(table.shape[0]):
        ex = abs(table[m, 3] * table[m, 6]) + abs(table[m, 4] * table[m, 7])
        ey = abs(table[m, 3] * table[m, 7]) + abs(table[m, 4] * table[m, 6])
        ia, ib = _bin_range(table[m, 0], ex, x0, cell, nx)
        ja, jb = _bin_range(table[m, 1], ey, y0, cell, ny)
        c = 0
        for ix in range(ia, ib + 1):
            for iy in range(ja, jb + 1):
                b = ix * ny + iy
                for k in range(starts[b], starts[b + 1]):
                    i = order[k]
                    if _inside(pts[i, 0], pts[i, 1], pts[i, 2], table, m):
                        c += 1
        out[m] = c
    return out


@cuda.jit(device=True)
def _inside_cuda(px: float, py: float, pz: float, table: Any, m: int) -> bool:
    dz = float64(pz) - table[m, 2]
    if not abs(dz) <= table[m, 5]:
        return False
    dx = float64(px) - table[m, 0]
    dy = float64(py) - table[m, 1]
    lx = dadd(dmul(dx, table[m, 6]), dmul(dy, table[m, 7]))
    if not abs(lx) <= table[m, 3]:
        return False
    ly = dadd(dmul(dy, table[m, 6]), -dmul(dx, table[m, 7]))
    return abs(ly) <= table[m, 4]


@cuda.jit
def _first_box_cuda(pts: Any, table: Any, out: Any) -> None:
    i = cuda.grid(1)
    if i >= pts.shape[0]:
        return
    out[i] = -1
    for m in range(table.shape[0]):
        if _inside_cuda(pts[i, 0], pts[i, 1], pts[i, 2], table, m):
            out[i] = m
            return


@cuda.jit
def _count_cuda(pts: Any, table: Any, out: Any) -> None:
    i = cuda.grid(1)
    if i >= pts.shape[0]:
        return
    for m in range(table.shape[0]):
        if _inside_cuda(pts[i, 0], pts[i, 1], pts[i, 2], table, m):
            cuda.atomic.add(out, m, 1)


def points_in_boxes(points: Any, boxes: Any, *, backend: KernelBackend = "auto") -> Any:
    """Index of the first box containing each point, or -1.

    points: (N, >=3) x, y, z in m (extra columns ignored); boxes: (M, 7) as in the module doc.
    Returns (N,) int32, as numpy or as a tensor/device array like `points`.
    """
    which = _backend.resolve(backend, points, boxes)
    _check_points(points)
    table = _table(boxes)
    match which:
        case "numpy":
            pts = _host_points(points)
            inside = _inside_numpy(pts, table)
            # argmax of an appended True column: the first box, or M when none holds the point
            first = np.concatenate([inside, np.ones((len(inside), 1), bool)], axis=1).argmax(axis=1)
            out = np.where(first < table.shape[0], first, -1).astype(np.int32)
        case "numba":
            out = _first_box_numba(_host_points(points), table)
        case "cuda":
            d_pts = _backend.to_device(points)
            d_out = cuda.device_array(d_pts.shape[0], np.int32)
            if d_pts.shape[0]:
                _first_box_cuda[_backend.blocks(d_pts.shape[0]), _backend.THREADS_PER_BLOCK](
                    d_pts, cuda.to_device(table), d_out
                )
            out = d_out
    return _backend.like(out, points)


def count_points_in_boxes(points: Any, boxes: Any, *, backend: KernelBackend = "auto") -> Any:
    """Number of points inside each box (a point in two boxes counts in both).

    points: (N, >=3) x, y, z in m; boxes: (M, 7). Returns (M,) int32, like `points`.
    """
    which = _backend.resolve(backend, points, boxes)
    _check_points(points)
    table = _table(boxes)
    match which:
        case "numpy":
            pts = _host_points(points)
            out = _inside_numpy(pts, table).sum(axis=0).astype(np.int32)
        case "numba":
            out = _count_numba(_host_points(points), table)
        case "cuda":
            d_pts = _backend.to_device(points)
            d_out = cuda.to_device(np.zeros(table.shape[0], np.int32))
            if d_pts.shape[0] and table.shape[0]:
                _count_cuda[_backend.blocks(d_pts.shape[0]), _backend.THREADS_PER_BLOCK](
                    d_pts, cuda.to_device(table), d_out
                )
            out = d_out
    return _backend.like(out, points)
