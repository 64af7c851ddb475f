"""Every picture of the stack, in one style: the calibration check of `fusion inspect`, the
per-class AP bars, BEV pictures and boxes in the six cameras of `fusion eval`, the loss curves
of `fusion train` and the contact sheet of a generated dataroot.

Matplotlib figures go through `_pyplot` (the file backend) and `_save` (one dpi, tight
layout, the folder made); ground truth is always `GT_COLOR`, each model its `MODEL_COLORS`.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fusion.config import CAMERA_CHANNELS, DETECTION_CLASSES
from fusion.frame import Detections, Frame

if TYPE_CHECKING:
    from fusion.postprocess.results import ModelMetrics

# -- one style ----------------------------------------------------------------------------------

DPI = 100
GT_COLOR = "tab:green"
POINT_COLOR = "0.6"  # LIDAR points under boxes
MODEL_COLORS = {"fusion": "tab:red", "camera": "tab:blue", "lidar": "tab:orange"}
# One colour per detection class (RGB 0..1): the replay's MCAP boxes and the contact sheet's.
CLASS_RGB: dict[str, tuple[float, float, float]] = dict(zip(DETECTION_CLASSES, [
    (0.89, 0.10, 0.11), (0.22, 0.49, 0.72), (0.30, 0.69, 0.29), (0.60, 0.31, 0.64),
    (1.00, 0.50, 0.00), (1.00, 1.00, 0.20), (0.65, 0.34, 0.16), (0.97, 0.51, 0.75),
    (0.10, 0.75, 0.80), (0.60, 0.60, 0.60),
], strict=True))  # fmt: skip


def class_bgr(name: str | None) -> tuple[int, int, int]:
    """`CLASS_RGB` of a detection class as an OpenCV colour (BGR 0..255); white for none."""
    r, g, b = CLASS_RGB.get(name or "", (1.0, 1.0, 1.0))
    return round(b * 255), round(g * 255), round(r * 255)


def _pyplot() -> Any:
    """matplotlib.pyplot on the file backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path, dpi: int = DPI, tight: bool = True) -> Path:
    """Write `fig` as PNG to `path` (folders made) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    else:  # gridspec layouts: crop to the drawn area instead
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)
    return path


# -- boxes --------------------------------------------------------------------------------------


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
    ax,  # noqa: ANN001
    center: np.ndarray,
    size_wlh: np.ndarray,
    yaw: np.ndarray,
    color: str = GT_COLOR,
    label: str | None = None,
) -> None:
    """Outline each box and draw a heading tick from its centre to its front edge."""
    for k, c in enumerate(box_corners_bev(center, size_wlh, yaw)):
        ring = np.vstack([c, c[:1]])
        ax.plot(ring[:, 0], ring[:, 1], color=color, lw=0.8, label=label if k == 0 else None)
        front = c[:2].mean(axis=0)
        ax.plot([center[k, 0], front[0]], [center[k, 1], front[1]], color=color, lw=0.8)


# -- fusion inspect -----------------------------------------------------------------------------


def render_frame(frame: Frame, path: str | Path, max_range: float = 60.0) -> Path:
    """Six cameras with LIDAR points projected and coloured by depth (m), and a BEV plot of
    the LIDAR points and GT boxes in the LIDAR_TOP frame. Writes a PNG and returns its path."""
    plt = _pyplot()
    fig = plt.figure(figsize=(20, 7.5))
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
    bev.scatter(pts[near, 0], pts[near, 1], s=0.1, c=POINT_COLOR)
    if frame.boxes is not None and len(frame.boxes):
        b = frame.boxes
        draw_boxes_bev(bev, b.center_lidar, b.size_wlh, b.yaw_lidar, label="ground truth")
        bev.legend(loc="upper right", fontsize=8)
    bev.set_xlim(-max_range, max_range)
    bev.set_ylim(-max_range, max_range)
    bev.set_aspect("equal")
    bev.set_title(f"BEV, LIDAR_TOP frame (m), {frame.sample_token[:8]}", fontsize=9)
    return _save(fig, path, dpi=80, tight=False)


# -- fusion eval --------------------------------------------------------------------------------


def plot_class_aps(metrics: Mapping[str, ModelMetrics], path: Path) -> Path:
    """Grouped bars: AP of each class, one bar per model."""
    plt = _pyplot()
    names = list(metrics)
    x = np.arange(len(DETECTION_CLASSES))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(11, 4))
    for i, n in enumerate(names):
        aps = [metrics[n].label_aps[c] for c in DETECTION_CLASSES]
        ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            aps,
            width,
            label=f"{n} (mAP {metrics[n].mean_ap:.3f})",
            color=MODEL_COLORS.get(n),
        )
    ax.set_xticks(x, DETECTION_CLASSES, rotation=30, ha="right")
    ax.set_ylabel("AP")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars reach AP 1
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_bev_samples(
    frame: Frame, detections: dict[str, Detections], cfg: Any, path: Path, min_score: float = 0.3
) -> Path:
    """BEV picture of one sample (LIDAR_TOP frame): LIDAR points, GT boxes, and each model's
    boxes scoring at least `min_score`, one panel per model."""
    plt = _pyplot()
    names = list(detections) or ["(no model)"]
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 6), squeeze=False)
    r = cfg.bev.bev_range
    for ax, name in zip(axes[0], names, strict=True):
        if frame.lidar is not None:
            p = frame.lidar.points
            ax.scatter(p[:, 0], p[:, 1], s=0.2, c=POINT_COLOR, linewidths=0)
        gt = frame.boxes
        if gt is not None and len(gt):
            evaluated = np.array([n is not None for n in gt.detection_names])
            if evaluated.any():
                draw_boxes_bev(
                    ax,
                    gt.center_lidar[evaluated],
                    gt.size_wlh[evaluated],
                    gt.yaw_lidar[evaluated],
                    label="ground truth",
                )
        dets = detections.get(name)
        if dets is not None and len(dets):
            keep = dets.scores >= min_score
            if keep.any():
                draw_boxes_bev(
                    ax,
                    dets.center[keep].astype(np.float64),
                    dets.size_wlh[keep].astype(np.float64),
                    dets.yaw[keep].astype(np.float64),
                    color=MODEL_COLORS.get(name, "tab:red"),
                    label=f"{name} (score >= {min_score})",
                )
        ax.set_xlim(r[0], r[3])
        ax.set_ylim(r[1], r[4])
        ax.set_aspect("equal")
        ax.set_title(f"{name}: {frame.sample_token[:8]}")
        ax.set_xlabel("x (m, LIDAR_TOP)")
        ax.set_ylabel("y (m)")
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path, dpi=90)


def box_corners_3d(
    center: NDArray[np.floating], size_wlh: NDArray[np.floating], yaw: NDArray[np.floating]
) -> NDArray[np.float64]:
    """(M, 8, 3) corners (m) of boxes with centres (M, 3), sizes (w, l, h) and yaw about +z
    (rad): corners 0-3 the bottom face in `box_corners_bev` order, 4-7 the top face above them."""
    center = np.asarray(center, np.float64).reshape(-1, 3)
    size = np.asarray(size_wlh, np.float64).reshape(-1, 3)
    bev = box_corners_bev(center, size, np.asarray(yaw, np.float64).reshape(-1))
    z = center[:, None, 2:3] + np.array([-0.5, 0.5])[None, :, None] * size[:, None, 2:3]
    bottom = np.concatenate([bev, np.repeat(z[:, :1], 4, 1)], -1)
    top = np.concatenate([bev, np.repeat(z[:, 1:], 4, 1)], -1)
    return np.concatenate([bottom, top], 1)


# edges of `box_corners_3d`: bottom ring, top ring, pillars
BOX_EDGES = (
    *((i, (i + 1) % 4) for i in range(4)),
    *((4 + i, 4 + (i + 1) % 4) for i in range(4)),
    *((i, i + 4) for i in range(4)),
)
GT_BGR = (60, 200, 60)  # GT_COLOR in OpenCV's BGR
MODEL_BGR = {"fusion": (40, 40, 214), "camera": (180, 119, 31), "lidar": (14, 127, 255)}


def _draw_boxes_camera(
    img: NDArray[np.uint8],
    corners_lidar: NDArray[np.float64],
    lidar_to_camera: Any,
    camera: Any,
    scale: float,
    color: tuple[int, int, int],
) -> None:
    """Draw each box (corners (M, 8, 3) in LIDAR_TOP) whose corners all lie in front of the
    camera and at least one inside the image, on `img` (resized by `scale` from the camera)."""
    import cv2

    for corners in corners_lidar:
        uv, depth, inside = camera.project(lidar_to_camera.apply(corners))
        if (depth <= 0.5).any() or not inside.any():
            continue
        px = np.round(uv * scale).astype(np.int32)
        for a, b in BOX_EDGES:
            cv2.line(img, tuple(px[a]), tuple(px[b]), color, 1, cv2.LINE_8)


def render_camera_detections(
    frame: Frame,
    detections: Detections | None,
    name: str,
    path: str | Path,
    min_score: float = 0.3,
    cam_width: int = 320,
) -> Path:
    """The six cameras (2 x 3 grid, each `cam_width` px wide) with the ground-truth boxes
    (green) and the `name` model's detections scoring at least `min_score` (its colour)
    projected into them; boxes in the LIDAR_TOP frame at the reference time go to each camera
    at its own time (`Frame.sensor_to_lidar`). Writes a PNG and returns its path."""
    import cv2

    cam_h = int(round(cam_width * 9 / 16))
    gt = frame.boxes
    gt_corners = np.zeros((0, 8, 3))
    if gt is not None and len(gt):
        evaluated = np.array([n is not None for n in gt.detection_names])
        gt_corners = box_corners_3d(
            gt.center_lidar[evaluated], gt.size_wlh[evaluated], gt.yaw_lidar[evaluated]
        )
    det_corners = np.zeros((0, 8, 3))
    if detections is not None and len(detections):
        keep = detections.scores >= min_score
        det_corners = box_corners_3d(
            detections.center[keep], detections.size_wlh[keep], detections.yaw[keep]
        )
    tiles = []
    for ch in CAMERA_CHANNELS:
        cam = frame.cameras.get(ch)
        if cam is None:
            tile = np.full((cam_h, cam_width, 3), 40, np.uint8)
            cv2.putText(tile, f"{ch}: missing", (8, cam_h // 2), 0, 0.5, (255, 255, 255), 1)
            tiles.append(tile)
            continue
        scale = cam_width / cam.image.shape[1]
        tile = cv2.resize(
            cv2.cvtColor(cam.image, cv2.COLOR_RGB2BGR),
            (cam_width, int(round(cam.image.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        to_cam = frame.sensor_to_lidar(ch).inverse()
        _draw_boxes_camera(tile, gt_corners, to_cam, cam.camera, scale, GT_BGR)
        _draw_boxes_camera(
            tile, det_corners, to_cam, cam.camera, scale, MODEL_BGR.get(name, (40, 40, 214))
        )
        cv2.putText(tile, ch, (6, 14), 0, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(cv2.resize(tile, (cam_width, cam_h)))
    grid = np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0)
    label = f"{frame.sample_token[:8]}: ground truth (green), {name} score >= {min_score}"
    cv2.putText(grid, label, (6, 2 * cam_h - 8), 0, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(grid, label, (6, 2 * cam_h - 8), 0, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


# -- fusion train -------------------------------------------------------------------------------


def plot_losses(log_path: Path, out: Path) -> Path | None:
    """Plot every loss term of `losses.jsonl` against the step (log scale) to `out` (PNG)."""
    if not log_path.is_file():
        return None
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return None
    plt = _pyplot()
    steps = np.array([r["step"] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in ("total", "heatmap", "regression", "attribute", "depth"):
        values = np.array([r[key] for r in rows], dtype=float)
        if np.all(values == 0):
            continue
        k = max(1, len(values) // 50)  # a running mean keeps the curve readable
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, out)


# -- contact sheet of a generated dataroot (OpenCV) ---------------------------------------------


def _bev_raster(
    points: NDArray[np.float32], boxes: list, size: int, extent: float
) -> NDArray[np.uint8]:
    """LIDAR points (x right, y forward in the LIDAR frame) coloured by height, boxes on top."""
    import cv2

    img = np.full((size, size, 3), 20, np.uint8)
    scale = size / (2 * extent)
    u = (points[:, 0] * scale + size / 2).astype(int)
    v = (size / 2 - points[:, 1] * scale).astype(int)
    ok = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    z = np.clip((points[ok, 2] + 2.0) / 4.0, 0, 1)
    colors = cv2.applyColorMap((z * 255).astype(np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, 0]
    img[v[ok], u[ok]] = colors
    for box, cat in boxes:
        c = box.corners()[:2, [0, 1, 5, 4]].T  # the four corners seen from above
        pts = np.column_stack([c[:, 0] * scale + size / 2, size / 2 - c[:, 1] * scale]).astype(
            np.int32
        )
        color = class_bgr(cat)
        cv2.polylines(img, [pts], True, color, 1, cv2.LINE_AA)
    cv2.circle(img, (size // 2, size // 2), 3, (255, 255, 255), -1)
    return img


def contact_sheet(
    dataroot: str | Path,
    version: str,
    out: str | Path,
    cam_width: int = 240,
    sample_index: int = -1,
) -> Path:
    """Per scene, one keyframe's six cameras and a BEV of its LIDAR sweep with the ground-truth
    boxes, one row per scene, written to `out` as PNG."""
    import cv2
    from nuscenes.eval.detection.utils import category_to_detection_name
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.data_classes import LidarPointCloud

    with contextlib.redirect_stdout(io.StringIO()):
        nusc = NuScenes(version, str(dataroot), verbose=False)
    cam_h = int(round(cam_width * 9 / 16))
    rows = []
    for scene in nusc.scene:
        tokens, tok = [], scene["first_sample_token"]
        while tok:
            tokens.append(tok)
            tok = nusc.get("sample", tok)["next"]
        sample = nusc.get("sample", tokens[sample_index])
        tiles = []
        for ch in CAMERA_CHANNELS:
            img = cv2.imread(nusc.get_sample_data_path(sample["data"][ch]))
            tiles.append(cv2.resize(img, (cam_width, cam_h), interpolation=cv2.INTER_AREA))
        grid = np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0)
        path, boxes, _ = nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
        pc = LidarPointCloud.from_file(path).points.T
        named = [(b, category_to_detection_name(b.name)) for b in boxes]
        bev = _bev_raster(pc, named, grid.shape[0], extent=40.0)
        row = np.concatenate([grid, bev], 1)
        desc = scene["description"].split(",")
        label = f"{scene['name']}  {desc[1].strip() if len(desc) > 1 else ''}"
        cv2.putText(row, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(
            row, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
        )
        rows.append(row)
    sheet = np.concatenate(rows, 0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return out
