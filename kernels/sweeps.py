"""LIDAR sweeps into one cloud: each scan rigidly moved into the reference frame, its ego-vehicle
returns dropped, its time lag appended, written straight into one output array.

A host-side kernel: the sweeps come from host messages and go to voxelize, so there is no CUDA
backend. The Numba kernel does in one pass per scan what the numpy reference does in several
(the close-return mask, the kept rows' copy, the matmul, the column copies): about a tenth of
the time on a 260k-point, 10-sweep cloud (`fusion bench kernels`, `benchmarks/kernels.md`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from kernels import _backend
from kernels._backend import KernelBackend


def _close(points: np.ndarray, close_m: np.float32) -> np.ndarray:
    """(N,) True for the ego vehicle's own returns: |x| and |y| < close_m in the sensor frame."""
    return (np.abs(points[:, 0]) < close_m) & (np.abs(points[:, 1]) < close_m)


def _scan_numpy(
    points: np.ndarray, matrix: np.ndarray | None, dt: float, close_m: np.float32, out: np.ndarray
) -> int:
    if matrix is None:
        kept = points
        out[: len(kept), :3] = kept[:, :3]
    else:
        close = _close(points, close_m)
        kept = points[~close] if close.any() else points
        xyz = kept[:, :3].astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
        out[: len(kept), :3] = xyz
    out[: len(kept), 3] = kept[:, 3]
    out[: len(kept), 4] = dt
    return len(kept)


@numba.njit(cache=True, nogil=True)
def _scan_numba(
    points: np.ndarray,
    matrix: np.ndarray,
    move: bool,
    dt: float,
    close_m: float,
    out: np.ndarray,
    row: int,
) -> int:
    r = row
    lag = np.float32(dt)
    for i in range(points.shape[0]):
        x = points[i, 0]
        y = points[i, 1]
        z = points[i, 2]
        if move:
            if abs(x) < close_m and abs(y) < close_m:
                continue
            xd, yd, zd = np.float64(x), np.float64(y), np.float64(z)
            out[r, 0] = matrix[0, 0] * xd + matrix[0, 1] * yd + matrix[0, 2] * zd + matrix[0, 3]
            out[r, 1] = matrix[1, 0] * xd + matrix[1, 1] * yd + matrix[1, 2] * zd + matrix[1, 3]
            out[r, 2] = matrix[2, 0] * xd + matrix[2, 1] * yd + matrix[2, 2] * zd + matrix[2, 3]
        else:
            out[r, 0] = x
            out[r, 1] = y
            out[r, 2] = z
        out[r, 3] = points[i, 3]
        out[r, 4] = lag
        r += 1
    return r


def merge_sweeps(
    scans: Sequence[np.ndarray],
    matrices: Sequence[np.ndarray | None],
    dts: Sequence[float],
    close_m: float,
    backend: KernelBackend = "auto",
) -> tuple[np.ndarray, list[int]]:
    """LIDAR scans (N_k, >=4) x y z intensity ... float32, each with its 4x4 reference <- scan
    matrix (None: already in the reference frame, copied as it is) and its lag dt (s)
    -> ((M, 5) float32 x y z intensity dt, the rows kept per scan).

    A moved scan drops its points with |x| and |y| < `close_m` in its own frame (the ego
    vehicle's returns; 0 keeps all), and is transformed in float64, rounded once to float32.
    An unmoved scan is copied whole. The result is contiguous, in the scans' order."""
    if not (len(scans) == len(matrices) == len(dts)):
        raise ValueError(f"{len(scans)} scans, {len(matrices)} matrices and {len(dts)} lags")
    for pts in scans:
        if pts.ndim != 2 or pts.shape[1] < 4 or pts.dtype != np.float32:
            raise ValueError(f"scans must be (N, >=4) float32, got {pts.shape} {pts.dtype}")
    if backend == "cuda":
        raise ValueError("merge_sweeps runs on the host (numpy or numba): its scans are host data")
    which = _backend.resolve(backend)  # "auto" is numba: host arrays
    close = np.float32(close_m)  # compared in float32 by both backends
    out = np.empty((sum(len(p) for p in scans), 5), np.float32)
    row = 0
    kept = []
    for pts, matrix, dt in zip(scans, matrices, dts, strict=True):
        m = None if matrix is None else np.ascontiguousarray(matrix, np.float64).reshape(4, 4)
        if which == "numpy":
            n = _scan_numpy(pts, m, float(dt), close, out[row:])
        else:
            eye = np.eye(4) if m is None else m
            n = _scan_numba(pts, eye, m is not None, float(dt), close, out, row) - row
        kept.append(n)
        row += n
    return out[:row], kept
