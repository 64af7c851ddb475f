"""Greedy non-maximum suppression in bird's-eye view: rotated-box IoU NMS and CenterPoint's
circle NMS.

Boxes are (M, 7) = x, y, z, l, w, h, yaw (m, rad); only x, y, l, w, yaw enter the BEV IoU.
Boxes are visited by descending score (ties: lower index first); a box is kept unless an
already kept box overlaps it by more than the threshold.

The rotated IoU is exact for convex quadrilaterals, without polygon clipping buffers: by
Green's theorem the intersection area is half the sum of cross(p, q) over the parts [p, q] of
each box's edges that lie inside the other box (Cyrus-Beck clipping of a segment against four
half-planes). An edge lying on the other box's edge line (within 1e-10 relative) counts once
when the two run the same way (a shared boundary) and not at all when they run opposite ways
(boxes that only touch).
The same scalar source is compiled for Python (the oracle), Numba CPU and Numba CUDA (hence
conditional expressions instead of min/max, which numba's CUDA target fails to compile); on the
GPU the compiler may fuse multiply-adds, so an IoU there can differ from the CPU in the last
bits (only a pair within ~1e-15 of the threshold could be decided differently).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import cuda

from kernels import _backend
from kernels._backend import KernelBackend
from kernels._cudamath import dadd, dmul


def _make_iou(jit: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[..., float]:
    """Compile the BEV IoU of two boxes (x, y, l/2, w/2, cos, sin each) with `jit`."""

    def corner(
        x: float, y: float, hl: float, hw: float, c: float, s: float, k: int
    ) -> tuple[float, float]:
        # counter-clockwise: (+l, +w), (-l, +w), (-l, -w), (+l, -w)
        lx = hl if (k == 0 or k == 3) else -hl
        ly = hw if k < 2 else -hw
        return x + (lx * c - ly * s), y + (lx * s + ly * c)

    corner_j = jit(corner)

    def clip(
        ax: float,
        ay: float,
        bx: float,
        by: float,
        x: float,
        y: float,
        hl: float,
        hw: float,
        c: float,
        s: float,
        owns_shared: bool,
    ) -> float:
        """cross(p, q) of the part [p, q] of segment a->b inside the box."""
        dx = bx - ax
        dy = by - ay
        t0 = 0.0
        t1 = 1.0
        for k in range(4):
            e0x, e0y = corner_j(x, y, hl, hw, c, s, k)
            e1x, e1y = corner_j(x, y, hl, hw, c, s, (k + 1) % 4)
            ex = e1x - e0x
            ey = e1y - e0y
            num = ex * (ay - e0y) - ey * (ax - e0x)  # >= 0: a is on the inner side
            den = ex * dy - ey * dx
            el = ex * ex + ey * ey
            # parallel within 1e-10 rad, on the line within 1e-10 of the edge length: corners
            # of two boxes sharing an edge line are computed apart and differ in the last bits
            if den * den <= 1e-20 * el * (dx * dx + dy * dy):
                if num * num <= 1e-20 * el * el:
                    if not (owns_shared and ex * dx + ey * dy > 0.0):
                        return 0.0
                elif num < 0.0:
                    return 0.0
            elif den > 0.0:
                t = -num / den
                t0 = t if t > t0 else t0
            else:
                t = -num / den
                t1 = t if t < t1 else t1
            if t0 >= t1:
                return 0.0
        px = ax + t0 * dx
        py = ay + t0 * dy
        qx = ax + t1 * dx
        qy = ay + t1 * dy
        return px * qy - py * qx

    clip_j = jit(clip)

    def iou(
        xa: float,
        ya: float,
        la: float,
        wa: float,
        ca: float,
        sa: float,
        xb: float,
        yb: float,
        lb: float,
        wb: float,
        cb: float,
        sb: float,
    ) -> float:
        # boxes farther apart than their half-diagonals cannot meet (kept conservative)
        ra = math.sqrt(la * la + wa * wa)
        rb = math.sqrt(lb * lb + wb * wb)
        ddx = xa - xb
        ddy = ya - yb
        if ddx * ddx + ddy * ddy > (ra + rb) * (ra + rb) * 1.000001 + 1e-12:
            return 0.0
        twice = 0.0
        for k in range(4):
            p0x, p0y = corner_j(xa, ya, la, wa, ca, sa, k)
            p1x, p1y = corner_j(xa, ya, la, wa, ca, sa, (k + 1) % 4)
            twice += clip_j(p0x, p0y, p1x, p1y, xb, yb, lb, wb, cb, sb, True)
            q0x, q0y = corner_j(xb, yb, lb, wb, cb, sb, k)
            q1x, q1y = corner_j(xb, yb, lb, wb, cb, sb, (k + 1) % 4)
            twice += clip_j(q0x, q0y, q1x, q1y, xa, ya, la, wa, ca, sa, False)
        inter = 0.5 * twice if twice > 0.0 else 0.0
        union = 4.0 * la * wa + 4.0 * lb * wb - inter
        if union <= 0.0:
            return 0.0
        return inter / union

    return jit(iou)


_iou_py = _make_iou(lambda f: f)
_iou_numba = _make_iou(lambda f: numba.njit(cache=True)(f))
_iou_cuda = _make_iou(lambda f: cuda.jit(device=True)(f))


def bev_iou(box_a: Any, box_b: Any) -> float:
    """Exact BEV IoU of two (7,) boxes (x, y, z, l, w, h, yaw)."""
    a = _table(np.asarray(box_a, np.float64).reshape(1, 7))[0]
    b = _table(np.asarray(box_b, np.float64).reshape(1, 7))[0]
    return float(_iou_py(*a, *b))


def _table(boxes: np.ndarray) -> np.ndarray:
    """(M, 6) float64: x, y, l/2, w/2, cos(yaw), sin(yaw), trig taken once for all backends."""
    t = np.empty((boxes.shape[0], 6), np.float64)
    t[:, 0:2] = boxes[:, 0:2]
    t[:, 2] = boxes[:, 3] * 0.5
    t[:, 3] = boxes[:, 4] * 0.5
    t[:, 4] = np.cos(boxes[:, 6])
    t[:, 5] = np.sin(boxes[:, 6])
    return t


def _order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def _greedy_py(t: np.ndarray, order: np.ndarray, thr: float) -> np.ndarray:
    keep: list[int] = []
    for i in order:
        if all(_iou_py(*t[k], *t[i]) <= thr for k in keep):
            keep.append(int(i))
    return np.asarray(keep, np.int64)


@numba.njit(cache=True)
def _greedy_numba(t: np.ndarray, order: np.ndarray, thr: float) -> np.ndarray:
    m = order.shape[0]
    suppressed = np.zeros(m, np.bool_)
    keep = np.empty(m, np.int64)
    nk = 0
    for a in range(m):
        if suppressed[a]:
            continue
        i = order[a]
        keep[nk] = i
        nk += 1
        for b in range(a + 1, m):
            if suppressed[b]:
                continue
            j = order[b]
            v = _iou_numba(
                t[i, 0],
                t[i, 1],
                t[i, 2],
                t[i, 3],
                t[i, 4],
                t[i, 5],
                t[j, 0],
                t[j, 1],
                t[j, 2],
                t[j, 3],
                t[j, 4],
                t[j, 5],
            )
            if v > thr:
                suppressed[b] = True
    return keep[:nk].copy()


@cuda.jit
def _iou_mask_cuda(t: Any, order: Any, thr: float, mask: Any) -> None:
    """mask[a, b] = IoU(order[a], order[b]) > thr for a < b (sorted positions)."""
    idx = cuda.grid(1)
    m = order.shape[0]
    if idx >= m * m:
        return
    a = idx // m
    b = idx - a * m
    if b <= a:
        mask[a, b] = 0
        return
    i = order[a]
    j = order[b]
    v = _iou_cuda(
        t[i, 0],
        t[i, 1],
        t[i, 2],
        t[i, 3],
        t[i, 4],
        t[i, 5],
        t[j, 0],
        t[j, 1],
        t[j, 2],
        t[j, 3],
        t[j, 4],
        t[j, 5],
    )
    mask[a, b] = 1 if v > thr else 0


@numba.njit(cache=True)
def _greedy_mask(mask: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Greedy pass over a precomputed suppression mask in sorted positions."""
    m = order.shape[0]
    suppressed = np.zeros(m, np.bool_)
    keep = np.empty(m, np.int64)
    nk = 0
    for a in range(m):
        if suppressed[a]:
            continue
        keep[nk] = order[a]
        nk += 1
        for b in range(a + 1, m):
            if mask[a, b]:
                suppressed[b] = True
    return keep[:nk].copy()


def _check(boxes: np.ndarray, scores: np.ndarray, width: int) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != width or scores.shape != (boxes.shape[0],):
        raise ValueError(
            f"expected (M, {width}) and scores (M,), got {boxes.shape} and {scores.shape}"
        )
    if np.isnan(scores).any() or np.isnan(boxes).any():
        raise ValueError("NaN in boxes or scores")


def nms_bev(
    boxes: Any, scores: Any, iou_threshold: float, *, backend: KernelBackend = "auto"
) -> Any:
    """Indices (K,) int64 of the boxes kept, by descending score.

    boxes (M, 7) (x, y, z, l, w, h, yaw), scores (M,); a box is suppressed when its exact BEV
    IoU with a kept box is > iou_threshold. NaN in boxes or scores raises ValueError.
    """
    which = _backend.resolve(backend, boxes, scores)
    b = _backend.to_host(boxes, np.float64)
    s = _backend.to_host(scores, np.float64)
    _check(b, s, 7)
    t = _table(b)
    order = _order(s)
    thr = float(iou_threshold)
    match which:
        case "numpy":
            keep = _greedy_py(t, order, thr)
        case "numba":
            keep = _greedy_numba(t, order, thr)
        case "cuda":
            m = order.shape[0]
            mask = cuda.device_array((m, m), np.uint8)
            if m:
                _iou_mask_cuda[_backend.blocks(m * m), _backend.THREADS_PER_BLOCK](
                    cuda.to_device(t), cuda.to_device(order), thr, mask
                )
            keep = _greedy_mask(mask.copy_to_host(), order)
    return _backend.like(keep, boxes)


def _circle_numpy(c: np.ndarray, order: np.ndarray, r2: float) -> np.ndarray:
    m = order.shape[0]
    suppressed = np.zeros(m, bool)
    keep = []
    pos = c[order]
    for a in range(m):
        if suppressed[a]:
            continue
        keep.append(order[a])
        dx = pos[a + 1 :, 0] - pos[a, 0]
        dy = pos[a + 1 :, 1] - pos[a, 1]
        suppressed[a + 1 :] |= dx * dx + dy * dy <= r2
    return np.asarray(keep, np.int64)


@numba.njit(cache=True)
def _circle_numba(c: np.ndarray, order: np.ndarray, r2: float) -> np.ndarray:
    m = order.shape[0]
    suppressed = np.zeros(m, np.bool_)
    keep = np.empty(m, np.int64)
    nk = 0
    for a in range(m):
        if suppressed[a]:
            continue
        i = order[a]
        keep[nk] = i
        nk += 1
        for b in range(a + 1, m):
            j = order[b]
            dx = c[j, 0] - c[i, 0]
            dy = c[j, 1] - c[i, 1]
            if dx * dx + dy * dy <= r2:
                suppressed[b] = True
    return keep[:nk].copy()


@cuda.jit
def _circle_mask_cuda(c: Any, order: Any, r2: float, mask: Any) -> None:
    idx = cuda.grid(1)
    m = order.shape[0]
    if idx >= m * m:
        return
    a = idx // m
    b = idx - a * m
    if b <= a:
        mask[a, b] = 0
        return
    i = order[a]
    j = order[b]
    dx = c[j, 0] - c[i, 0]
    dy = c[j, 1] - c[i, 1]
    mask[a, b] = 1 if dadd(dmul(dx, dx), dmul(dy, dy)) <= r2 else 0


def circle_nms(centers: Any, scores: Any, radius: float, *, backend: KernelBackend = "auto") -> Any:
    """CenterPoint's circle NMS: indices (K,) int64 kept, by descending score.

    centers (M, >=2) x, y in m (extra columns ignored), scores (M,); a box is suppressed when
    its centre lies within `radius` m (inclusive) of a kept one. Note CenterPoint's
    `circle_nms(dets, thresh)` compares the *squared* distance with `thresh`, so its
    thresh equals radius**2 here. NaN raises ValueError.
    """
    which = _backend.resolve(backend, centers, scores)
    c = _backend.to_host(centers, np.float64)
    s = _backend.to_host(scores, np.float64)
    if c.ndim != 2 or c.shape[1] < 2:
        raise ValueError(f"centers must be (M, >=2), got {c.shape}")
    c = np.ascontiguousarray(c[:, :2])
    _check(c, s, 2)
    order = _order(s)
    r2 = float(radius) * float(radius)
    match which:
        case "numpy":
            keep = _circle_numpy(c, order, r2)
        case "numba":
            keep = _circle_numba(c, order, r2)
        case "cuda":
            m = order.shape[0]
            mask = cuda.device_array((m, m), np.uint8)
            if m:
                _circle_mask_cuda[_backend.blocks(m * m), _backend.THREADS_PER_BLOCK](
                    cuda.to_device(c), cuda.to_device(order), r2, mask
                )
            keep = _greedy_mask(mask.copy_to_host(), order)
    return _backend.like(keep, centers)
