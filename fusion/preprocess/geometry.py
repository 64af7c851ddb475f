"""Camera geometry of the LSS lift: frustum points in the LIDAR_TOP frame and depth targets.

All points in m. A camera here is the network-input camera (after resize and crop, see
`fusion.train.dataset`), so frustum pixels are those of the feature map.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera
from fusion.config import CameraConfig


def depth_bin_centers(cfg: CameraConfig) -> NDArray[np.float64]:
    """(D,) centres of the LSS depth bins in m: depth_min + (i + 0.5) * depth_step."""
    return cfg.depth_min + (np.arange(cfg.depth_bins) + 0.5) * cfg.depth_step


def camera_frustum_lidar(
    camera: PinholeCamera, cam_to_lidar: NDArray[np.float64], cfg: CameraConfig
) -> NDArray[np.float32]:
    """Frustum of one camera, (D, h, w, 3) float32 points in the LIDAR_TOP frame.

    `cam_to_lidar` (4, 4) maps camera-frame points to LIDAR_TOP (LIDAR(t_ref) <- camera(t_cam)).
    """
    h, w = cfg.feature_size
    pts = camera.frustum(h, w, depth_bin_centers(cfg))  # (D, h, w, 3) camera frame
    rot, trans = cam_to_lidar[:3, :3], cam_to_lidar[:3, 3]
    return (pts @ rot.T + trans).astype(np.float32)


def depth_targets(
    points_lidar: NDArray[np.floating],
    camera: PinholeCamera,
    cam_to_lidar: NDArray[np.float64],
    cfg: CameraConfig,
) -> NDArray[np.int64]:
    """Depth-bin index of the nearest LIDAR point in each feature pixel, (h, w) int64, -1 where
    no point falls (or its depth is outside the bins). `points_lidar` (N, >=3) in LIDAR_TOP."""
    h, w = cfg.feature_size
    out = np.full((h, w), -1, dtype=np.int64)
    if len(points_lidar) == 0:
        return out
    lidar_to_cam = np.linalg.inv(cam_to_lidar)
    p = np.asarray(points_lidar[:, :3], dtype=np.float64) @ lidar_to_cam[:3, :3].T
    p += lidar_to_cam[:3, 3]
    uv, depth, valid = camera.project(p)
    bins = np.floor((depth - cfg.depth_min) / cfg.depth_step).astype(np.int64)
    valid &= (bins >= 0) & (bins < cfg.depth_bins)
    if not valid.any():
        return out
    col = np.clip((uv[valid, 0] * w / camera.width).astype(np.int64), 0, w - 1)
    row = np.clip((uv[valid, 1] * h / camera.height).astype(np.int64), 0, h - 1)
    b = bins[valid]
    # Nearest point wins: write far to near so the last write per pixel is the nearest.
    order = np.argsort(-depth[valid], kind="stable")
    out[row[order], col[order]] = b[order]
    return out
