"""Outputs of `fusion replay`: the record of one processed trigger that every sink receives
(`Processed`, its boxes in the global frame), the files (`DetectionsJsonl` streamed per frame,
`ResultsJson` in the devkit's format) and the visual outputs, a Foxglove MCAP and a rerun
recording.

MCAP (foxglove protobuf schemas, written with `mcap-protobuf-support`): `/detections`
foxglove.SceneUpdate (one cube per box, in `map`), `/lidar_top` foxglove.PointCloud (the
frame's compensated cloud in `LIDAR_TOP`), `/<camera>/image_rect_compressed`
foxglove.CompressedImage (the frame's images, JPEG), `/tf` foxglove.FrameTransform
(`map` -> `base_link` at the trigger time, `base_link` -> `LIDAR_TOP`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fusion.config import PipelineConfig
from fusion.data.sensor_io import encode_jpeg
from fusion.engines.runner import StageTimes
from fusion.errors import FusionError
from fusion.frame import Detections, Frame
from fusion.outputs.plots import CLASS_RGB
from fusion.postprocess.results import detections_to_results
from fusion.sources.base import LogMessage
from fusion.sources.mcap import (
    float_layout,
    frame_transform,
    packed_point_cloud,
)


@dataclass(frozen=True, eq=False)
class Processed:
    """One processed trigger: its frame, detections, stage times and latency."""

    frame: Frame
    detections: Detections
    times: StageTimes
    latency_ms: float
    late: bool
    raw: dict[str, LogMessage] = field(default_factory=dict)  # the messages the frame used


def boxes_global(item: Processed) -> list[dict[str, Any]]:
    """Detections as devkit result boxes in the global frame (without the sample token)."""
    out = []
    for box in detections_to_results(item.detections, item.frame):
        box = dict(box)
        box.pop("sample_token", None)
        out.append(box)
    return out


def _ns(us: int) -> int:
    return int(us) * 1000


class McapSink:
    """`--mcap OUT.mcap`: what Foxglove opens to watch the replay."""

    def __init__(self, path: Path, cfg: PipelineConfig) -> None:
        from mcap_protobuf.writer import Writer

        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("wb")
        self._w = Writer(self._f)
        self.cfg = cfg

    def write(self, item: Processed) -> None:
        """One processed trigger: `/tf`, the boxes (`/detections`), the LIDAR cloud and the
        camera images, encoded as `fusion convert` encodes them (`fusion.sources.mcap`)."""
        from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
        from foxglove_schemas_protobuf.CubePrimitive_pb2 import CubePrimitive
        from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform
        from foxglove_schemas_protobuf.SceneEntity_pb2 import SceneEntity
        from foxglove_schemas_protobuf.SceneUpdate_pb2 import SceneUpdate

        frame = item.frame
        t_us = frame.timestamp_us
        t = _ns(t_us)
        ego = frame.reference.ego_to_global
        for parent, child, tf in (
            ("map", "base_link", ego),
            ("base_link", "LIDAR_TOP", frame.reference.sensor_to_ego),
        ):
            msg = frame_transform(FrameTransform, parent, child, tf, t_us)
            self._w.write_message("/tf", msg, log_time=t, publish_time=t)

        scene = SceneUpdate()
        entity = SceneEntity(id="detections", frame_id="map")
        entity.timestamp.FromNanoseconds(t)
        entity.lifetime.FromNanoseconds(_ns(600_000))
        for box in boxes_global(item):
            cube = CubePrimitive()
            cube.pose.position.x, cube.pose.position.y, cube.pose.position.z = box["translation"]
            w, qx, qy, qz = box["rotation"]
            cube.pose.orientation.w, cube.pose.orientation.x = w, qx
            cube.pose.orientation.y, cube.pose.orientation.z = qy, qz
            bw, bl, bh = box["size"]
            cube.size.x, cube.size.y, cube.size.z = bl, bw, bh
            r, g, b = CLASS_RGB[box["detection_name"]]
            cube.color.r, cube.color.g, cube.color.b = r, g, b
            cube.color.a = 0.25 + 0.6 * float(box["detection_score"])
            entity.cubes.append(cube)
        scene.entities.append(entity)
        self._w.write_message("/detections", scene, log_time=t, publish_time=t)

        if frame.lidar is not None:
            pts = np.ascontiguousarray(frame.lidar.points[:, :4], "<f4")
            layout = float_layout(("x", "y", "z", "intensity"))
            cloud = packed_point_cloud(layout, pts.tobytes(), "LIDAR_TOP", t_us)
            self._w.write_message("/lidar_top", cloud, log_time=t, publish_time=t)

        for ch, cam in frame.cameras.items():
            img = CompressedImage(frame_id=ch, format="jpeg", data=encode_jpeg(cam.image, 85))
            tc = _ns(cam.pose.timestamp_us)
            img.timestamp.FromNanoseconds(tc)
            self._w.write_message(
                f"/{ch.lower()}/image_rect_compressed", img, log_time=t, publish_time=tc
            )

    def close(self) -> None:
        self._w.finish()
        self._f.close()


class RerunSink:
    """`--rerun OUT.rrd`: the replay as a rerun recording (global frame, sensor time)."""

    def __init__(self, path: Path) -> None:
        try:
            import rerun as rr
        except ImportError as exc:
            raise FusionError(
                "--rerun needs rerun-sdk: pip install 'fusion-stack[viz]'", path
            ) from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rr: Any = rr
        self.rec = rr.new_recording(application_id="fusion_replay")
        rr.save(str(path), recording=self.rec)

    def write(self, item: Processed) -> None:
        rr, rec = self.rr, self.rec
        frame = item.frame
        _set_time(rr, rec, frame.timestamp_us)
        lidar_to_global = frame.reference.sensor_to_global
        if frame.lidar is not None:
            pts = lidar_to_global.apply(frame.lidar.points[:, :3].astype(np.float64))
            rr.log("world/lidar", rr.Points3D(pts.astype(np.float32), radii=0.05), recording=rec)
        boxes = boxes_global(item)
        if boxes:
            rr.log(
                "world/detections",
                rr.Boxes3D(
                    centers=[b["translation"] for b in boxes],
                    half_sizes=[
                        (b["size"][1] / 2, b["size"][0] / 2, b["size"][2] / 2) for b in boxes
                    ],
                    quaternions=[
                        rr.Quaternion(xyzw=[*b["rotation"][1:], b["rotation"][0]]) for b in boxes
                    ],
                    labels=[f"{b['detection_name']} {b['detection_score']:.2f}" for b in boxes],
                ),
                recording=rec,
            )
        else:
            rr.log("world/detections", rr.Clear(recursive=False), recording=rec)
        for ch, cam in frame.cameras.items():
            rr.log(f"cameras/{ch}", rr.Image(cam.image[::2, ::2]), recording=rec)

    def close(self) -> None:
        self.rr.disconnect(recording=self.rec)  # flushes the file


def _set_time(rr: Any, rec: Any, timestamp_us: int) -> None:
    """Sensor time on the `sensor` timeline (rerun renamed this call after 0.22)."""
    if hasattr(rr, "set_time_nanos"):
        rr.set_time_nanos("sensor", int(timestamp_us) * 1000, recording=rec)
    else:
        rr.set_time("sensor", timestamp=np.datetime64(int(timestamp_us), "us"), recording=rec)


class Sink(Protocol):
    def write(self, item: Processed) -> None: ...

    def close(self) -> None: ...


class DetectionsJsonl:
    """`--detections`: one JSON line per processed trigger."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("w")

    def write(self, item: Processed) -> None:
        line = {
            "timestamp_us": item.frame.timestamp_us,
            "sample_token": item.frame.sample_token or None,
            "boxes": [
                {k: b[k] for k in ("translation", "size", "rotation", "velocity")}
                | {"detection_name": b["detection_name"], "detection_score": b["detection_score"]}
                for b in boxes_global(item)
            ],
        }
        self._f.write(json.dumps(line) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class ResultsJson:
    """`--results`: a nuScenes results JSON of the keyframe triggers (those with a sample
    token), which the devkit scores as it scores `fusion eval`."""

    def __init__(self, path: Path, meta: dict[str, bool]) -> None:
        self.path = path
        self.meta = meta
        self.results: dict[str, list[dict[str, Any]]] = {}

    def write(self, item: Processed) -> None:
        if item.frame.sample_token:
            self.results[item.frame.sample_token] = detections_to_results(
                item.detections, item.frame
            )

    def close(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"meta": self.meta, "results": self.results}))
