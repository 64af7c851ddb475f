"""A contact sheet of a dataroot: per scene, one keyframe's six cameras and a bird's-eye view
of its LIDAR sweep with the ground-truth boxes, stacked into one small PNG.

    python -m fusion.synth.contact_sheet DATAROOT --version v1.0-synth --out sheet.png
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fusion.config import CAMERA_CHANNELS

CLASS_COLORS = {  # BGR
    "vehicle.car": (60, 60, 230),
    "vehicle.truck": (40, 140, 240),
    "vehicle.bus.rigid": (0, 200, 255),
    "vehicle.trailer": (120, 120, 200),
    "vehicle.construction": (0, 220, 220),
    "human.pedestrian.adult": (230, 80, 60),
    "vehicle.motorcycle": (200, 60, 200),
    "vehicle.bicycle": (230, 160, 60),
    "movable_object.trafficcone": (0, 128, 255),
    "movable_object.barrier": (180, 180, 180),
}


def _bev(points: NDArray[np.float32], boxes: list, size: int, extent: float) -> NDArray[np.uint8]:  # noqa: ANN001
    """LIDAR points (x right, y forward in the LIDAR frame) coloured by height, boxes on top."""
    img = np.full((size, size, 3), 20, np.uint8)
    scale = size / (2 * extent)
    u = (points[:, 0] * scale + size / 2).astype(int)
    v = (size / 2 - points[:, 1] * scale).astype(int)
    ok = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    z = np.clip((points[ok, 2] + 2.0) / 4.0, 0, 1)
    colors = cv2.applyColorMap((z * 255).astype(np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, 0]
    img[v[ok], u[ok]] = colors
    for box, cat in boxes:
        c = box.corners()[:2, [0, 1, 5, 4]].T  # bottom face? use the 4 top-view corners
        pts = np.column_stack([c[:, 0] * scale + size / 2, size / 2 - c[:, 1] * scale]).astype(
            np.int32
        )
        cv2.polylines(img, [pts], True, CLASS_COLORS.get(cat, (255, 255, 255)), 1, cv2.LINE_AA)
    cv2.circle(img, (size // 2, size // 2), 3, (255, 255, 255), -1)
    return img


def contact_sheet(
    dataroot: str | Path,
    version: str,
    out: str | Path,
    cam_width: int = 240,
    sample_index: int = -1,
) -> Path:
    """Write the sheet (one row per scene) to `out` as PNG and return its path."""
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
        named = [(b, b.name) for b in boxes]
        bev = _bev(pc, named, grid.shape[0], extent=40.0)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataroot", type=Path)
    parser.add_argument("--version", default="v1.0-synth")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cam-width", type=int, default=240)
    args = parser.parse_args(argv)
    path = contact_sheet(args.dataroot, args.version, args.out, args.cam_width)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
