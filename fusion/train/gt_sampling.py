"""Ground-truth sampling: annotated objects pasted into training frames (SECOND's "GT database").

A database holds, per detection class, the objects of some annotated scans: each box (LIDAR_TOP
frame of its scan), its velocity and attribute, and the keyframe-scan points inside it. A
training frame draws up to `GtSampling.max_per_class` objects per class, turns each about the
sensor's z axis by a random angle (`rotate`: the range and the side that faces the sensor stay
those the points were measured from), drops any that collide in bird's-eye view with a box of
the frame or with another pasted one, removes the frame's points inside the pasted boxes and
adds the objects' points and boxes. One real scene's few hundred objects then appear in many
places and beside the synthetic scenes' roads, instead of where that scene parked them.

The objects are pasted into the LIDAR scan only: cameras and radars do not see them, so a frame
is pasted into only when its model reads the LIDAR and modality dropout has kept it
(`fusion.train.dataset.training_sample`), and the camera depth targets are taken before.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration.quaternion import quaternion_from_yaw, yaw_from_matrix
from fusion.config import DETECTION_CLASSES, GtSampling, PipelineConfig
from fusion.frame import Boxes, Frame
from kernels.points_in_boxes import points_in_boxes

# A pasted object keeps this far (m) from the sensor, beyond the ego box and its own returns
EGO_CLEARANCE_M = 3.0


@dataclass(frozen=True, eq=False)
class DatabaseObject:
    """One annotated object: its box (x y z l w h yaw), BEV velocity (NaN where unknown) and
    the keyframe-scan points inside the box (N, 5: x y z intensity dt), all in the LIDAR_TOP
    frame of the scan it was cut from."""

    detection_name: str
    category: str
    attribute: str
    box: NDArray[np.float64]
    velocity: NDArray[np.float64]
    points: NDArray[np.float32]
    token: str  # the annotation's token


@dataclass(frozen=True, eq=False)
class ObjectDatabase:
    """Objects by detection class, and where they came from (the run's record)."""

    objects: dict[str, tuple[DatabaseObject, ...]]
    data: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        return {name: len(objs) for name, objs in self.objects.items() if objs}

    def describe(self) -> dict[str, object]:
        return {"data": list(self.data), "objects": self.counts()}


def cut_objects(frame: Frame, min_points: int) -> list[DatabaseObject]:
    """The frame's annotated objects of a detection class with at least `min_points` points of
    its keyframe scan inside their box."""
    boxes, lidar = frame.boxes, frame.lidar
    if boxes is None or lidar is None or not len(boxes):
        return []
    scan = lidar.points[: lidar.keyframe_points]
    arr = boxes.as_array()
    out = []
    for i, name in enumerate(boxes.detection_names):
        if name is None:
            continue
        # each box on its own: a rider's points are in the rider's box and the motorcycle's
        inside = scan[points_in_boxes(scan, arr[i : i + 1], backend="numpy") == 0]
        if len(inside) < min_points:
            continue
        out.append(
            DatabaseObject(
                detection_name=name,
                category=boxes.categories[i],
                attribute=boxes.attributes[i],
                box=arr[i].copy(),
                velocity=np.asarray(boxes.velocity_lidar[i], np.float64).copy(),
                points=np.array(inside, np.float32),
                token=boxes.tokens[i],
            )
        )
    return out


def build_database(
    frames: Iterable[Frame], min_points: int, data: Sequence[str] = ()
) -> ObjectDatabase:
    """Cut every frame's objects (`cut_objects`) into one database."""
    by_class: dict[str, list[DatabaseObject]] = {name: [] for name in DETECTION_CLASSES}
    for frame in frames:
        for obj in cut_objects(frame, min_points):
            by_class[obj.detection_name].append(obj)
    return ObjectDatabase({k: tuple(v) for k, v in by_class.items()}, tuple(data))


def _turned(obj: DatabaseObject, angle: float) -> tuple[NDArray, NDArray, NDArray]:
    """The object's box, velocity and points turned by `angle` about the sensor's z axis."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    box = obj.box.copy()
    box[:2] = rot @ box[:2]
    box[6] = math.atan2(math.sin(box[6] + angle), math.cos(box[6] + angle))
    points = obj.points.copy()
    points[:, :2] = points[:, :2] @ rot.T.astype(np.float32)
    return box, rot @ obj.velocity, points


def _footprint_radius(box: NDArray[np.float64]) -> NDArray[np.float64]:
    """Half the BEV diagonal of (M, 7) boxes: a circle that holds each footprint."""
    return 0.5 * np.hypot(box[..., 3], box[..., 4])


def paste_objects(
    frame: Frame,
    database: ObjectDatabase,
    params: GtSampling,
    cfg: PipelineConfig,
    rng: np.random.Generator,
) -> Frame:
    """`frame` with objects of `database` pasted into its LIDAR scan and its boxes (module
    doc). Two boxes collide when their footprints' circles overlap (conservative for long
    boxes); an object must lie inside the point range and `EGO_CLEARANCE_M` from the sensor."""
    lidar = frame.lidar
    if lidar is None:
        return frame
    x0, y0, _, x1, y1, _ = cfg.point_cloud.point_range
    placed = frame.boxes.as_array() if frame.boxes is not None else np.zeros((0, 7))
    chosen: list[tuple[DatabaseObject, NDArray, NDArray, NDArray]] = []
    for name, count in zip(DETECTION_CLASSES, params.max_per_class, strict=True):
        pool = database.objects.get(name, ())
        if count == 0 or not pool:
            continue
        for index in rng.choice(len(pool), size=min(count, len(pool)), replace=False):
            obj = pool[int(index)]
            angle = rng.uniform(-math.pi, math.pi) if params.rotate else 0.0
            box, velocity, points = _turned(obj, angle)
            r = _footprint_radius(box)
            if not (x0 + r <= box[0] <= x1 - r and y0 + r <= box[1] <= y1 - r):
                continue
            if math.hypot(box[0], box[1]) < r + EGO_CLEARANCE_M:
                continue
            gaps = np.hypot(placed[:, 0] - box[0], placed[:, 1] - box[1])
            if np.any(gaps < _footprint_radius(placed) + r):
                continue
            placed = np.vstack([placed, box])
            chosen.append((obj, box, velocity, points))
    if not chosen:
        return frame
    new_boxes = np.stack([c[1] for c in chosen])
    # the frame's own returns inside a pasted box would sit inside the object: removed
    keep = points_in_boxes(lidar.points, new_boxes, backend="numpy") < 0
    kept_key = int(keep[: lidar.keyframe_points].sum())
    pasted = np.concatenate([c[3] for c in chosen]).astype(np.float32)
    pasted[:, 4] = 0.0  # the keyframe scan's dt
    points = np.concatenate(
        [
            pasted,
            lidar.points[: lidar.keyframe_points][keep[: lidar.keyframe_points]],
            lidar.points[lidar.keyframe_points :][keep[lidar.keyframe_points :]],
        ]
    )
    new_lidar = dataclasses.replace(lidar, points=points, keyframe_points=len(pasted) + kept_key)
    return dataclasses.replace(frame, lidar=new_lidar, boxes=_with_boxes(frame, chosen))


def _with_boxes(
    frame: Frame, chosen: list[tuple[DatabaseObject, NDArray, NDArray, NDArray]]
) -> Boxes:
    """The frame's boxes and the pasted ones, their global pose from the frame's reference."""
    ref = frame.reference
    lidar_to_global = ref.ego_to_global.matrix @ ref.sensor_to_ego.matrix
    rot = lidar_to_global[:3, :3]
    box = np.stack([c[1] for c in chosen])
    velocity = np.stack([c[2] for c in chosen])
    center_global = box[:, :3] @ rot.T + lidar_to_global[:3, 3]
    yaw_offset = yaw_from_matrix(rot)
    rotation_global = np.stack([quaternion_from_yaw(yaw + yaw_offset) for yaw in box[:, 6]])
    pasted = Boxes(
        tokens=tuple(f"pasted:{c[0].token}" for c in chosen),
        categories=tuple(c[0].category for c in chosen),
        detection_names=tuple(c[0].detection_name for c in chosen),
        attributes=tuple(c[0].attribute for c in chosen),
        center_lidar=box[:, :3],
        yaw_lidar=box[:, 6],
        size_wlh=box[:, [4, 3, 5]],
        velocity_lidar=velocity,
        center_global=center_global,
        rotation_global=rotation_global,
        velocity_global=velocity @ rot[:2, :2].T,
        num_lidar_pts=np.array([len(c[3]) for c in chosen], np.int64),
        num_radar_pts=np.zeros(len(chosen), np.int64),
    )
    if frame.boxes is None:
        return pasted
    old = frame.boxes
    return Boxes(
        **{
            f.name: (
                getattr(old, f.name) + getattr(pasted, f.name)
                if isinstance(getattr(old, f.name), tuple)
                else np.concatenate([getattr(old, f.name), getattr(pasted, f.name)])
            )
            for f in dataclasses.fields(Boxes)
        }
    )
