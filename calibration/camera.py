"""Pinhole camera model (undistorted images, as nuScenes ships them).

Camera frame: x right, y down, z forward (m). Pixels: u right, v down, (0, 0) at the
top-left corner of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """Intrinsics `K` (3, 3) and image size in pixels. Immutable."""

    intrinsics: NDArray[np.float64] = field(repr=False)
    width: int
    height: int

    def __post_init__(self) -> None:
        k = np.array(self.intrinsics, dtype=np.float64)
        if k.shape != (3, 3):
            raise ValueError(f"intrinsics must be 3x3, got {k.shape}")
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ValueError("focal lengths must be positive")
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
