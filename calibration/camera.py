"""Pinhole camera model (undistorted images, as nuScenes ships them).

Camera frame: x right, y down, z forward (m). Pixels: u right, v down, (0, 0) at the
top-left corner of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The largest 2-norm condition number of K accepted. A real K's is about its focal length in px
# (nuScenes: about 2.0e3; a 1e5 px telephoto: about 1e5); beyond 1e6 unprojecting a pixel loses
# more than 6 of float64's 16 digits, and a singular K (a zero row, dependent rows) is infinite.
MAX_INTRINSICS_CONDITION = 1e6


def intrinsics_problem(k: ArrayLike) -> str | None:
    """Why `k` is not a usable pinhole matrix, or None: it must be a finite 3x3 matrix with
    positive focal lengths (px), last row (0, 0, 1) (`project` divides by depth, not by that
    row) and a condition number of at most `MAX_INTRINSICS_CONDITION` (invertible, well
    conditioned)."""
    try:
        kk = np.asarray(k, dtype=np.float64)
    except (TypeError, ValueError):
        return f"intrinsics must be a 3x3 matrix of numbers, got {k!r:.60}"
    if kk.shape != (3, 3):
        return f"intrinsics must be 3x3, got {kk.shape}"
    if not np.isfinite(kk).all():
        return "intrinsics must be finite (focal lengths and principal point)"
    if kk[0, 0] <= 0 or kk[1, 1] <= 0:
        return "focal lengths must be positive"
    if not np.allclose(kk[2], (0.0, 0.0, 1.0), rtol=0.0, atol=1e-9):
        return f"intrinsics' last row must be (0, 0, 1), got {kk[2].tolist()}"
    cond = float(np.linalg.cond(kk))
    if not cond <= MAX_INTRINSICS_CONDITION:  # inf or NaN for a singular K
        return (
            f"intrinsics are singular or ill-conditioned: condition number {cond:.3g} > "
            f"{MAX_INTRINSICS_CONDITION:g}"
        )
    return None


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """Intrinsics `K` (3, 3, px; see `intrinsics_problem`) and image size in pixels. Immutable."""

    intrinsics: NDArray[np.float64] = field(repr=False)
    width: int
    height: int

    def __post_init__(self) -> None:
        problem = intrinsics_problem(self.intrinsics)
        if problem is not None:
            raise ValueError(problem)
        k = np.array(self.intrinsics, dtype=np.float64)
        k.setflags(write=False)
        object.__setattr__(self, "intrinsics", k)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def fx(self) -> float:
        return float(self.intrinsics[0, 0])

    @property
    def fy(self) -> float:
        return float(self.intrinsics[1, 1])

    @property
    def cx(self) -> float:
        return float(self.intrinsics[0, 2])

    @property
    def cy(self) -> float:
        return float(self.intrinsics[1, 2])

    def project(
        self, points_cam: ArrayLike, min_depth: float = 1e-3
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """(N, 3) points in the camera frame -> pixels (N, 2), depth (N,) in m, and a mask of
        points in front of the camera (depth > min_depth) that land inside the image."""
        p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        depth = p[:, 2]
        safe = np.where(depth > min_depth, depth, 1.0)
        uvw = p @ self.intrinsics.T
        uv = uvw[:, :2] / safe[:, None]
        valid = (
            (depth > min_depth)
            & (uv[:, 0] >= 0)
            & (uv[:, 0] < self.width)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] < self.height)
        )
        return uv, depth, valid

    def unproject(self, uv: ArrayLike, depth: ArrayLike) -> NDArray[np.float64]:
        """Pixels (..., 2) at depths (...) in m (z along the optical axis) -> (..., 3) points.

        With `uv` of shape (H, W, 2) and depth bins (D, 1, 1) this broadcasts to the LSS frustum
        (D, H, W, 3)."""
        uv = np.asarray(uv, dtype=np.float64)
        d = np.asarray(depth, dtype=np.float64)
        x = (uv[..., 0] - self.cx) / self.fx * d
        y = (uv[..., 1] - self.cy) / self.fy * d
        x, y, z = np.broadcast_arrays(x, y, d)
        return np.stack([x, y, z], axis=-1)

    def frustum(self, feat_h: int, feat_w: int, depths: ArrayLike) -> NDArray[np.float64]:
        """LSS frustum: the centres of a feat_h x feat_w grid over the image at each depth (D,),
        as (D, feat_h, feat_w, 3) points in the camera frame."""
        us = (np.arange(feat_w) + 0.5) * self.width / feat_w
        vs = (np.arange(feat_h) + 0.5) * self.height / feat_h
        uu, vv = np.meshgrid(us, vs)
        uv = np.stack([uu, vv], axis=-1)[None]  # (1, H, W, 2)
        d = np.asarray(depths, dtype=np.float64)[:, None, None]
        return self.unproject(uv, d)

    def scaled(self, sx: float, sy: float | None = None) -> PinholeCamera:
        """The camera after resizing the image by (sx, sy): K's first two rows scale, mapping
        the image rectangle [0, W] onto [0, W * sx] (the convention of LSS/BEVFusion)."""
        sy = sx if sy is None else sy
        k = self.intrinsics.copy()
        k[0] *= sx
        k[1] *= sy
        return PinholeCamera(k, round(self.width * sx), round(self.height * sy))

    def cropped(self, x0: int, y0: int, width: int, height: int) -> PinholeCamera:
        """The camera after cropping the box [x0, x0 + width) x [y0, y0 + height)."""
        k = self.intrinsics.copy()
        k[0, 2] -= x0
        k[1, 2] -= y0
        return PinholeCamera(k, width, height)
