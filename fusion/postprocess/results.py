"""Detections as the nuScenes devkit's results: result boxes in the global frame, and the
devkit's summary of one model. `fusion eval` writes and scores them; `fusion replay --results`
writes them for the keyframes it replays (with the same `meta`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration import matrix_to_quaternion, quaternion_from_yaw, quaternion_multiply
from fusion.config import DETECTION_CLASSES
from fusion.frame import Detections, Frame

TP_ERRORS = ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err")
MAX_BOXES_PER_SAMPLE = 500  # the devkit's limit


def detections_to_results(dets: Detections, frame: Frame) -> list[dict[str, Any]]:
    """Detections (LIDAR_TOP at the reference time) -> devkit result boxes (global frame)."""
    lidar_to_global = frame.reference.sensor_to_global
    if len(dets) == 0:
        return []
    centers = lidar_to_global.apply(dets.center.astype(np.float64))
    vel = np.column_stack([dets.velocity.astype(np.float64), np.zeros(len(dets))])
    vel_g = lidar_to_global.apply_vectors(vel)[:, :2]
    order = np.argsort(-dets.scores, kind="stable")[:MAX_BOXES_PER_SAMPLE]
    out = []
    for i in order:
        c, s = float(np.cos(dets.yaw[i])), float(np.sin(dets.yaw[i]))
        rot = lidar_to_global.rotation @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        out.append(
            {
                "sample_token": frame.sample_token,
                "translation": [float(v) for v in centers[i]],
                "size": [float(v) for v in dets.size_wlh[i]],
                "rotation": [float(v) for v in matrix_to_quaternion(rot)],
                "velocity": [float(v) for v in vel_g[i]],
                "detection_name": DETECTION_CLASSES[int(dets.labels[i])],
                "detection_score": float(dets.scores[i]),
                "attribute_name": dets.attributes[i] if dets.attributes else "",
            }
        )
    return out


def displace_results(
    boxes: list[dict[str, Any]],
    ego_xy: np.ndarray,
    offset_xy: np.ndarray,
    dyaw: float,
) -> list[dict[str, Any]]:
    """Result boxes of one keyframe (global frame) as an ego-pose error would place them.

    The pose is off by `offset_xy` (m, global x and y) and turned by `dyaw` (rad, about +z)
    about the true ego position `ego_xy` (m, global): each centre p goes to
    p + offset + (R(dyaw) - I)(p - ego), each heading turns by `dyaw` and each velocity is
    rotated by R(dyaw). Height, size, score, names are kept. New dicts; with a zero error the
    boxes come back equal (the rotation is skipped, not applied as the identity)."""
    ego = np.asarray(ego_xy, dtype=np.float64)
    off = np.asarray(offset_xy, dtype=np.float64)
    c, s = float(np.cos(dyaw)), float(np.sin(dyaw))
    turn = quaternion_from_yaw(dyaw)
    out = []
    for box in boxes:
        p = np.asarray(box["translation"][:2], dtype=np.float64)
        moved = dict(box)
        if dyaw != 0.0:
            d = p - ego
            p = p + np.array([(c - 1.0) * d[0] - s * d[1], s * d[0] + (c - 1.0) * d[1]])
            vx, vy = box["velocity"]
            moved["velocity"] = [c * vx - s * vy, s * vx + c * vy]
            moved["rotation"] = [float(v) for v in quaternion_multiply(turn, box["rotation"])]
        p = p + off
        moved["translation"] = [float(p[0]), float(p[1]), box["translation"][2]]
        out.append(moved)
    return out


@dataclass(frozen=True)
class ModelMetrics:
    """The devkit's summary for one model: mAP, NDS, per-class AP (mean over the distance
    thresholds), the five TP errors; `empty` when the model returned no box at all."""

    mean_ap: float
    nd_score: float
    label_aps: dict[str, float]
    tp_errors: dict[str, float]
    empty: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "mean_ap": self.mean_ap,
            "nd_score": self.nd_score,
            "label_aps": self.label_aps,
            "tp_errors": self.tp_errors,
            "empty_submission": self.empty,
        }


def results_meta(modalities: Collection[str], absent: Collection[str] = ()) -> dict[str, bool]:
    """The results file's `meta`: the sensor modalities the detections used, those of the model
    (`camera`, `lidar`, `radar`) less the ones `absent` (dropped at inference); no map, no
    external data."""
    used = set(modalities) - set(absent)
    return {
        "use_camera": "camera" in used,
        "use_lidar": "lidar" in used,
        "use_radar": "radar" in used,
        "use_map": False,
        "use_external": False,
    }
