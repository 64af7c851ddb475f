"""Which points lie in which yaw-rotated 3D boxes.

Boxes are (M, 7) = x, y, z (centre), l (along the heading), w, h, yaw (rad about +z), in m, in
the frame of the points. A point is inside when, in the box frame,
|local x| <= l/2, |local y| <= w/2 and |z - zc| <= h/2 (boundaries inclusive, as the devkit's
`points_in_box`). All tests run in float64; cos and sin of the yaws are taken once on the host
so every backend rounds identically. A point with a NaN coordinate is in no box.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import cuda, float64

from kernels import _backend
from kernels._backend import Backend
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


@numba.njit(cache=True, parallel=True)
def _first_box_numba(pts: np.ndarray, table: np.ndarray) -> np.ndarray:
    n = pts.shape[0]
    out = np.full(n, -1, np.int32)
    for i in numba.prange(n):
        for m in range(table.shape[0]):
            if _inside(pts[i, 0], pts[i, 1], pts[i, 2], table, m):
                out[i] = m
                break
    return out


@numba.njit(cache=True, parallel=True)
def _count_numba(pts: np.ndarray, table: np.ndarray) -> np.ndarray:
    m_boxes = table.shape[0]
    out = np.zeros(m_boxes, np.int32)
    for m in numba.prange(m_boxes):
        c = 0
        for i in range(pts.shape[0]):
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


def points_in_boxes(points: Any, boxes: Any, *, backend: Backend = "auto") -> Any:
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


def count_points_in_boxes(points: Any, boxes: Any, *, backend: Backend = "auto") -> Any:
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
