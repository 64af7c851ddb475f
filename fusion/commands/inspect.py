"""`fusion inspect`: a readable (or JSON) summary of one sample, and a calibration picture."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from fusion.commands.arguments import add_json_arguments, add_pose_arguments, emit_json
from fusion.data.reader import NuScenesReader, ReaderOptions, sync_warning
from fusion.data.rig_file import localization_from_rig
from fusion.errors import DataError
from fusion.frame import Frame
from fusion.localization.pose_source import POSE_SOURCE_TEXT
from fusion.outputs.plots import render_frame
from kernels import count_points_in_boxes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataroot", required=True, help="nuScenes dataroot")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-mini")
    parser.add_argument("--sample", help="sample token (default: the first sample)")
    parser.add_argument("--sweeps", type=int, default=1, help="LIDAR sweeps to load (default 1)")
    add_json_arguments(parser, "the summary")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="PNG",
        help="write cameras with projected LIDAR and a BEV plot of the boxes",
    )
    parser.add_argument(
        "--tolerant", action="store_true", help="mark broken sensors missing instead of failing"
    )
    add_pose_arguments(parser, latency=False)
    parser.add_argument(
        "--rig", type=Path, help="with --poses gnss-imu: the rig whose [gnss] calibrates it"
    )


def box_points(frame: Frame) -> np.ndarray:
    """Keyframe LIDAR points inside each GT box, boundaries inclusive: (M,) int."""
    if frame.lidar is None or frame.boxes is None or len(frame.boxes) == 0:
        return np.zeros(0 if frame.boxes is None else len(frame.boxes), dtype=np.int64)
    key = frame.lidar.points[: frame.lidar.keyframe_points, :3]
    return np.asarray(count_points_in_boxes(key, frame.boxes.as_array()), dtype=np.int64)


def inspect_json(frame: Frame, out_of_sync: Mapping[str, int] | None = None) -> dict:
    """The `--json` object (see README): timestamps, calibration chains, boxes, and the
    keyframes the reader left out for being beyond the sync tolerance (channel -> count)."""
    counts = box_points(frame)
    boxes = frame.boxes
    return {
        "sample_token": frame.sample_token,
        "scene": frame.scene_name,
        "reference_timestamp_us": frame.timestamp_us,
        "timestamps_us": {ch: frame.timestamp_us + off for ch, off in frame.offsets_us.items()},
        "offsets_us": frame.offsets_us,
        "lidar_points": 0 if frame.lidar is None else frame.lidar.keyframe_points,
        "lidar_to_camera": {
            ch: frame.sensor_to_lidar(ch).inverse().matrix.tolist() for ch in frame.cameras
        },
        "camera_intrinsics": {ch: c.camera.intrinsics.tolist() for ch, c in frame.cameras.items()},
        "radar_points": {ch: int(len(r.points)) for ch, r in frame.radars.items()},
        "missing": frame.missing,
        "out_of_sync": dict(out_of_sync or {}),
        # sweeps in the tables whose files are absent (keyframes-only layout): not fused
        "absent_sweeps": {
            "total": sum(frame.absent_sweeps.values()),
            "by_channel": frame.absent_sweeps,
        },
        "boxes": [
            {
                "token": boxes.tokens[i],
                "category": boxes.categories[i],
                "detection_name": boxes.detection_names[i],
                "attribute": boxes.attributes[i],
                "center_lidar": boxes.center_lidar[i].tolist(),
                "size_wlh": boxes.size_wlh[i].tolist(),
                "yaw_lidar": float(boxes.yaw_lidar[i]),
                "velocity_lidar": [
                    None if np.isnan(v) else float(v) for v in boxes.velocity_lidar[i]
                ],
                "num_lidar_pts": int(boxes.num_lidar_pts[i]),
                "points_in_box": int(counts[i]),
            }
            for i in range(0 if boxes is None else len(boxes))
        ],
    }


def summary_text(info: dict, frame: Frame) -> str:
    lines = [
        f"sample {info['sample_token']}  scene {info['scene']}  "
        f"t_ref {info['reference_timestamp_us']} us"
    ]
    lines.append(f"{'sensor':<18}{'offset ms':>10}  data")
    for ch, off in info["offsets_us"].items():
        if ch in frame.cameras:
            c = frame.cameras[ch]
            what = f"{c.camera.width}x{c.camera.height} fx {c.camera.fx:.1f}"
        elif ch in frame.radars:
            what = f"{info['radar_points'][ch]} radar points ({frame.radars[ch].num_sweeps} sweeps)"
        else:
            what = (
                f"{info['lidar_points']} points ({frame.lidar.num_sweeps} sweeps, "
                f"{len(frame.lidar.points)} in all)"
            )
        lines.append(f"{ch:<18}{off / 1000:>10.1f}  {what}")
    for ch, why in info["missing"].items():
        lines.append(f"{ch:<18}{'missing':>10}  {why}")
    if info["out_of_sync"]:
        lines.append(sync_warning(info["out_of_sync"]))
    absent = info["absent_sweeps"]
    if absent["total"]:
        per = ", ".join(f"{ch} {n}" for ch, n in absent["by_channel"].items())
        lines.append(
            f"{absent['total']} sweeps absent (files not on disk, keyframes-only layout; "
            f"fused without them): {per}"
        )
    if "ego_poses" in info:
        lines.append(f"ego poses: {POSE_SOURCE_TEXT.get(info['ego_poses'], info['ego_poses'])}")
    if frame.ego_motion is not None:
        em = frame.ego_motion
        lines.append(
            f"ego speed {np.linalg.norm(em.velocity[:2]):.2f} m/s, yaw rate "
            f"{np.degrees(em.yaw_rate):.2f} deg/s (from {em.source})"
        )
    boxes = info["boxes"]
    lines.append(f"{len(boxes)} GT boxes")
    by_class: dict[str, list[int]] = {}
    for b in boxes:
        by_class.setdefault(b["detection_name"] or "(not evaluated)", []).append(b["points_in_box"])
    for name, pts in sorted(by_class.items()):
        lines.append(f"  {name:<22}{len(pts):>4} boxes, {sum(pts):>6} LIDAR points inside")
    mism = sum(b["points_in_box"] != b["num_lidar_pts"] for b in boxes)
    if boxes:
        lines.append(f"  points_in_box differs from the table's num_lidar_pts for {mism} boxes")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    options = ReaderOptions(
        lidar_sweeps=args.sweeps, radar_sweeps=1, tolerant=args.tolerant, poses=args.poses
    )
    if args.rig is not None:
        config, origin = localization_from_rig(args.rig)
        options = replace(options, localization=config, map_origin=origin)
    reader = NuScenesReader(args.dataroot, args.version, options)
    tokens = reader.sample_tokens()
    if not tokens:
        raise DataError("dataroot has no samples", args.dataroot)
    frame = reader.frame(args.sample or tokens[0])
    info = inspect_json(frame, reader.out_of_sync) | {"ego_poses": reader.pose_source}
    if not emit_json(args, info):
        print(summary_text(info, frame))
    if args.render:
        out = render_frame(frame, args.render)
        print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    return 0
