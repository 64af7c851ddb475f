"""Pictures a person checks calibration and detections with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusion.config import CAMERA_CHANNELS
from fusion.frame import Frame


def box_corners_bev(center: np.ndarray, size_wlh: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(M, 4, 2) BEV corners (m) of boxes with centres (M, >=2), sizes (w, l, h), yaw (rad);
    corners 0 and 1 are the front ones."""
    half_l, half_w = size_wlh[:, 1] / 2, size_wlh[:, 0] / 2
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float64)
    local = signs[None] * np.stack([half_l, half_w], -1)[:, None]  # (M, 4, 2)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x = local[..., 0] * c - local[..., 1] * s + center[:, None, 0]
    y = local[..., 0] * s + local[..., 1] * c + center[:, None, 1]
    return np.stack([x, y], -1)


def draw_boxes_bev(
    ax,
    center: np.ndarray,
    size_wlh: np.ndarray,
    yaw: np.ndarray,  # noqa: ANN001
    color: str = "tab:green",
    label: str | None = None,
) -> None:
    """Outline each box and draw a heading tick from its centre to its front edge."""
    for k, c in enumerate(box_corners_bev(center, size_wlh, yaw)):
        ring = np.vstack([c, c[:1]])
        ax.plot(ring[:, 0], ring[:, 1], color=color, lw=0.8, label=label if k == 0 else None)
        front = c[:2].mean(axis=0)
        ax.plot([center[k, 0], front[0]], [center[k, 1], front[1]], color=color, lw=0.8)


def render_frame(frame: Frame, path: str | Path, max_range: float = 60.0) -> Path:
    """Six cameras with LIDAR points projected and coloured by depth (m), and a BEV plot of
    the LIDAR points and GT boxes in the LIDAR_TOP frame. Writes a PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(20, 7.5), dpi=80)
    grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 0.95], wspace=0.03, hspace=0.08)
    pts = frame.lidar.points[:, :3] if frame.lidar is not None else np.zeros((0, 3))
    for k, ch in enumerate(CAMERA_CHANNELS):
        ax = fig.add_subplot(grid[k // 3, k % 3])
        ax.set_axis_off()
        ax.set_title(ch, fontsize=9)
        cam = frame.cameras.get(ch)
        if cam is None:
            ax.text(0.5, 0.5, f"{ch}: missing", ha="center", transform=ax.transAxes)
            continue
        ax.imshow(cam.image)
        uv, depth, ok = cam.camera.project(frame.sensor_to_lidar(ch).inverse().apply(pts))
        ax.scatter(
            uv[ok, 0],
            uv[ok, 1],
            c=np.clip(depth[ok], 0, max_range),
            s=0.3,
            cmap="turbo",
            vmin=0,
            vmax=max_range,
        )
    bev = fig.add_subplot(grid[:, 3])
    near = np.abs(pts[:, :2]).max(axis=1) < max_range
    bev.scatter(pts[near, 0], pts[near, 1], s=0.1, c="0.55")
    if frame.boxes is not None and len(frame.boxes):
        b = frame.boxes
        draw_boxes_bev(bev, b.center_lidar, b.size_wlh, b.yaw_lidar, label="ground truth")
        bev.legend(loc="upper right", fontsize=8)
    bev.set_xlim(-max_range, max_range)
    bev.set_ylim(-max_range, max_range)
    bev.set_aspect("equal")
    bev.set_title(f"BEV, LIDAR_TOP frame (m), {frame.sample_token[:8]}", fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
