"""Foxglove MCAP logs in the layout of Foxglove's `nuscenes2mcap` converter: reader and writer.

Layout (topics from the topic map, `configs/topics_nuscenes.toml` by default):
- `/lidar_top`: foxglove.PointCloud, x y z intensity ring float32, stride 20;
- `/radar_front`, ...: foxglove.PointCloud with the PCD header's fields (43-byte records);
- `/cam_front/image_rect_compressed`, ...: foxglove.CompressedImage (jpeg);
- `/cam_front/camera_info`, ...: foxglove.CameraCalibration (K, P, width, height);
- `/tf`: foxglove.FrameTransform, `map` -> `base_link` (ego poses) and `base_link` -> lowercase
  channel (extrinsics);
- `/odom`, `/imu`: JSON from the CAN bus `pose` and `ms_imu`.

nuscenes2mcap logs a keyframe's messages at the LIDAR keyframe's time, while each message's own
`timestamp` field is its sensor's time, so `timestamp_us` comes from the message and
`log_time_us` from the MCAP record. The JSON channels carry no time field: both are the log time
(which nuscenes2mcap sets to the CAN `utime`). Containers are read and written with `mcap` and
`mcap-protobuf-support`, messages with `foxglove-schemas-protobuf`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from calibration import PinholeCamera, Transform
from fusion.data.sensor_io import encode_jpeg
from fusion.errors import DataError
from fusion.sources.base import LogMessage, Rig, SourceKind
from fusion.sources.decoders import (
    FOXGLOVE_NUMERIC_TYPE,
    LIDAR_FIELDS,
    RADAR_DTYPE,
    decode_foxglove_image,
    decode_foxglove_lidar,
    decode_foxglove_location_fix,
    decode_foxglove_radar,
    decode_foxglove_transform,
    decode_jpeg_image,
    decode_json_imu,
    decode_json_odom,
    decode_json_speed,
    library_errors,
    radar_records,
)
from fusion.sources.layout import (
    GNSS_CHANNEL,
    IMU_CHANNEL,
    KEYFRAMES_TOPIC,
    ODOM_CHANNEL,
    POSE_CHANNEL,
    SPEED_CHANNEL,
    TopicMap,
    complete_rig,
    keyframes_json,
    load_topic_map,
    parse_keyframes,
)

# the quality of a camera image written to a log from decoded pixels (a source that gave no
# JPEG bytes); images that came as JPEG are written as they came
REENCODE_JPEG_QUALITY = 95

_SENSOR_DECODERS = {
    "lidar": decode_foxglove_lidar,
    "radar": decode_foxglove_radar,
    "camera": decode_foxglove_image,
}


def _us(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000 + int(stamp.nanos) // 1000


def _stamp(timestamp_us: int) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    sec, us = divmod(int(timestamp_us), 1_000_000)
    return Timestamp(seconds=sec, nanos=us * 1000)


def _mcap_errors() -> tuple[type[BaseException], ...]:
    from mcap.exceptions import McapError

    return (McapError, OSError, ValueError, EOFError, KeyError, AssertionError)


def iter_mcap(path: Path, topics: list[str]) -> Iterator[tuple[str, int, bytes]]:
    """(topic, log time ns, data) of `topics` in log-time order; a corrupt chunk is a DataError
    naming the file. Nothing is read when `topics` is empty."""
    from mcap.reader import make_reader

    if not topics:
        return
    with path.open("rb") as f:
        try:
            for _, channel, message in make_reader(f).iter_messages(
                topics=topics, log_time_order=True
            ):
                yield channel.topic, message.log_time, message.data
        except _mcap_errors() as exc:
            raise DataError(f"corrupt MCAP ({type(exc).__name__}: {exc})", path) from exc


def _open_summary(path: Path) -> tuple[BinaryIO, Any, Any]:
    """Open an MCAP and read its summary; a missing file, a truncated or unindexed MCAP is a
    DataError naming the file."""
    from mcap.reader import make_reader

    if not path.is_file():
        raise DataError("file is missing", path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path) from exc
    try:
        reader = make_reader(f)
        summary = reader.get_summary()
    except _mcap_errors() as exc:
        f.close()
        raise DataError(
            f"truncated or corrupt MCAP file ({type(exc).__name__}: {exc})", path
        ) from exc
    if summary is None or summary.statistics is None:
        f.close()
        raise DataError(
            "MCAP has no summary (truncated or unindexed); `mcap recover` can repair it", path
        )
    return f, reader, summary


def mcap_schema_encodings(path: str | Path) -> set[str]:
    """The schema encodings of an MCAP's channels (`protobuf`, `ros2msg`, `jsonschema`, ...)."""
    f, _, summary = _open_summary(Path(path))
    f.close()
    return {summary.schemas[c.schema_id].encoding for c in summary.channels.values() if c.schema_id}


class FoxgloveMcapSource:
    """A foxglove-schema MCAP log (nuscenes2mcap layout, or another through a topic map)."""

    kind: SourceKind = "mcap"

    def __init__(
        self, path: str | Path, *, topics: TopicMap | None = None, rig: Rig | None = None
    ) -> None:
        self.path = Path(path)
        self.topics = topics or load_topic_map()
        self._fallback = rig
        f, reader, summary = _open_summary(self.path)
        f.close()
        self._channels = {c.topic: c for c in summary.channels.values()}
        self._schemas = {
            c.topic: summary.schemas[c.schema_id].name if c.schema_id else ""
            for c in summary.channels.values()
        }
        counts = summary.statistics.channel_message_counts
        self._counts = Counter({c.topic: counts.get(cid, 0) for cid, c in summary.channels.items()})
        self._start = summary.statistics.message_start_time // 1000
        self._end = summary.statistics.message_end_time // 1000
        self.topics.check_against(self._channels, self.path)
        for s in self.topics.sensors:
            want = {"camera": "foxglove.CompressedImage"}.get(s.kind, "foxglove.PointCloud")
            have = self._schemas.get(s.topic)
            if have is not None and have != want:
                raise DataError(
                    f"topic {s.topic} has schema {have!r}, expected {want!r}", self.path
                )
        self._keyframes = self._read_keyframes()

    def _iter(self, topics: list[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, log time ns, data) in log-time order; a corrupt chunk is a DataError."""
        return iter_mcap(self.path, [t for t in topics if t in self._channels])

    def _read_keyframes(self) -> dict[tuple[str, int], str]:
        for _, _, data in self._iter([KEYFRAMES_TOPIC]):
            return parse_keyframes(data, f"{self.path}:{KEYFRAMES_TOPIC}")
        return {}

    @property
    def sensor_channels(self) -> list[str]:
        return [s.channel for s in self.topics.sensors if s.topic in self._channels]

    # -- the Source protocol -----------------------------------------------------------------
    def rig(self) -> Rig:
        """Extrinsics from /tf `base_link` -> sensor frame and intrinsics from camera_info (the
        first of each), the rest from the `rig` fallback."""
        from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration
        from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform

        tm = self.topics
        present = [s for s in tm.sensors if s.topic in self._channels]
        by_frame = {s.frame: s.channel for s in present}
        by_info = {s.info: s.channel for s in present if s.info}
        extrinsics: dict[str, Transform] = {}
        cameras: dict[str, PinholeCamera] = {}
        others = tm.rig_frames()  # the GNSS antenna and the IMU (Rig.frames)
        frames: dict[str, Transform] = {}
        wanted = len(present) + len(by_info)
        first_ns = None  # the static transforms are written together, at the log's start
        for topic, log_ns, data in self._iter([tm.tf, *by_info]):
            if len(extrinsics) + len(cameras) == wanted and log_ns != first_ns:
                break
            first_ns = log_ns if first_ns is None else first_ns
            origin = f"{self.path}:{topic}"
            try:
                if topic in by_info:
                    ch = by_info[topic]
                    if ch not in cameras:
                        cal = CameraCalibration.FromString(data)
                        k = np.array(cal.K, dtype=np.float64).reshape(3, 3)
                        cameras[ch] = PinholeCamera(k, int(cal.width), int(cal.height))
                else:
                    tf = FrameTransform.FromString(data)
                    ch = by_frame.get(tf.child_frame_id)
                    name = others.get(tf.child_frame_id)
                    if name and tf.parent_frame_id == tm.ego_frame and name not in frames:
                        t, r = tf.translation, tf.rotation
                        frames[name] = Transform.from_translation_quaternion(
                            (t.x, t.y, t.z), (r.w, r.x, r.y, r.z), src=name, dst="ego"
                        )
                    elif (
                        ch is not None
                        and tf.parent_frame_id == tm.ego_frame
                        and ch not in extrinsics
                    ):
                        t, r = tf.translation, tf.rotation
                        extrinsics[ch] = Transform.from_translation_quaternion(
                            (t.x, t.y, t.z), (r.w, r.x, r.y, r.z), src=ch, dst="ego"
                        )
            except library_errors() as exc:  # protobuf DecodeError; bad K or NaN: ValueError
                raise DataError(f"bad calibration message: {exc}", origin) from exc
            if len(extrinsics) + len(cameras) == wanted and len(frames) == len(others):
                break
        cams = [s.channel for s in present if s.kind == "camera"]
        found = ", ".join(f"{tm.ego_frame} -> {f}" for f, name in others.items() if name in frames)
        return complete_rig(
            [s.channel for s in present], extrinsics, cameras, cams, self._fallback, self.path,
            frames, f"{tm.tf} ({found})",
        )  # fmt: skip

    def messages(self) -> Iterator[LogMessage]:
        """Sensor, pose, odom and IMU messages in log-time order, undecoded. Only /tf messages
        (a few dozen bytes) are parsed, to tell ego poses from extrinsics."""
        from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
        from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform
        from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

        tm = self.topics
        sensors = tm.by_topic()
        stamped = {"camera": CompressedImage, "lidar": PointCloud, "radar": PointCloud}
        from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix

        streams = [t for t in (tm.tf, tm.odom, tm.imu, tm.gnss, tm.speed) if t]
        for topic, log_ns, data in self._iter([*sensors, *streams]):
            log_us = log_ns // 1000
            origin = f"{self.path}:{topic}@{log_ns}"
            if topic in sensors:
                s = sensors[topic]
                try:  # the sensor time is the message's own timestamp
                    ts = _us(stamped[s.kind].FromString(data).timestamp)
                except library_errors():  # a corrupt message: its decode() raises DataError
                    ts = log_us
                tok = self._keyframes.get((s.channel, ts))
                yield LogMessage(
                    s.channel, s.kind, ts, log_us, data, _SENSOR_DECODERS[s.kind], origin,
                    tok is not None, tok,
                )  # fmt: skip
            elif topic == tm.tf:
                try:
                    tf = FrameTransform.FromString(data)
                except library_errors():
                    continue  # neither a readable pose nor an extrinsic
                if tf.parent_frame_id == tm.map_frame and tf.child_frame_id == tm.ego_frame:
                    ts = _us(tf.timestamp)
                    yield LogMessage(
                        POSE_CHANNEL, "pose", ts, log_us, data, decode_foxglove_transform, origin
                    )
            elif topic == tm.odom:
                yield LogMessage(
                    ODOM_CHANNEL, "pose", log_us, log_us, data, decode_json_odom, origin
                )
            elif topic == tm.gnss:
                try:
                    ts = _us(LocationFix.FromString(data).timestamp) or log_us
                except library_errors():  # its decode() raises DataError
                    ts = log_us
                yield LogMessage(
                    GNSS_CHANNEL, "gnss", ts, log_us, data, decode_foxglove_location_fix, origin
                )
            elif topic == tm.speed:
                yield LogMessage(
                    SPEED_CHANNEL, "speed", log_us, log_us, data, decode_json_speed, origin
                )
            else:
                yield LogMessage(IMU_CHANNEL, "imu", log_us, log_us, data, decode_json_imu, origin)

    def info(self) -> Mapping[str, Any]:
        channels = self.topics.channel_counts(self._counts)
        return {
            "path": str(self.path),
            "kind": self.kind,
            "channels": channels,
            "keyframes": sum(1 for ch, _ in self._keyframes if ch == "LIDAR_TOP"),
            "start_us": self._start,
            "end_us": self._end,
            "duration_s": (self._end - self._start) * 1e-6,
        }


class FoxgloveMcapWriter:
    """Writes LogMessages in the nuscenes2mcap layout. The rig goes on /tf (base_link -> sensor)
    and camera_info once at the log's start; each camera image is followed by its camera_info,
    as nuscenes2mcap does. Log time = the message's `log_time_us`."""

    def __init__(
        self,
        path: str | Path,
        rig: Rig,
        *,
        topics: TopicMap | None = None,
        keyframes: Mapping[str, list[tuple[int, str]]] | None = None,
        start_us: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        from mcap.writer import CompressionType, Writer

        self.path = Path(path)
        self.rig = rig
        self.topics = topics or load_topic_map()
        self._keyframes = keyframes
        self._start_us = start_us  # log time of the calibration and keyframe marks
        self._file = self.path.open("wb")
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile="", library="fusion convert")
        if metadata:
            self._writer.add_metadata("scene-info", dict(metadata))
        self._channels: dict[str, int] = {}
        self._started = False
        self._by_channel = {s.channel: s for s in self.topics.sensors}

    def _channel(self, topic: str, message_class: Any = None, json_schema: str = "") -> int:
        if topic not in self._channels:
            if message_class is not None:
                from mcap_protobuf.schema import register_schema

                sid = register_schema(self._writer, message_class)
                encoding = "protobuf"
            else:
                sid = self._writer.register_schema(
                    json_schema, "jsonschema", json.dumps({"type": "object"}).encode()
                )
                encoding = "json"
            self._channels[topic] = self._writer.register_channel(topic, encoding, sid)
        return self._channels[topic]

    def _log(self, topic: str, msg: Any, log_us: int, json_schema: str = "") -> None:
        if isinstance(msg, bytes):
            data, cid = msg, self._channel(topic, json_schema=json_schema)
        else:
            data, cid = msg.SerializeToString(), self._channel(topic, type(msg))
        ns = int(log_us) * 1000
        self._writer.add_message(cid, log_time=ns, data=data, publish_time=ns)

    def _start(self, t_us: int) -> None:
        from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform

        self._started = True
        if self._keyframes is not None:
            self._log(KEYFRAMES_TOPIC, keyframes_json(self._keyframes), t_us, "Keyframes")
        for ch, cal in self.rig.sensors.items():
            s = self._by_channel.get(ch)
            if s is None:
                continue
            tf = frame_transform(
                FrameTransform, self.topics.ego_frame, s.frame, cal.sensor_to_ego, t_us
            )
            self._log(self.topics.tf, tf, t_us)
            if cal.camera is not None and s.info:
                self._log(s.info, _camera_calibration(cal.camera, s.frame, t_us), t_us)
        by_name = {name: frame for frame, name in self.topics.rig_frames().items()}
        for name, to_ego in self.rig.frames.items():  # the GNSS antenna and the IMU
            if name in by_name:
                tf = frame_transform(
                    FrameTransform, self.topics.ego_frame, by_name[name], to_ego, t_us
                )
                self._log(self.topics.tf, tf, t_us)

    def write(self, msg: LogMessage) -> None:
        from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
        from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform

        if not self._started:
            self._start(msg.log_time_us if self._start_us is None else self._start_us)
        tm, t, log = self.topics, msg.timestamp_us, msg.log_time_us
        payload = msg.decode()
        match msg.kind:
            case "lidar" | "radar":
                s = self._sensor(msg)
                self._log(s.topic, _point_cloud(msg.kind, payload, s.frame, t), log)
            case "camera":
                s = self._sensor(msg)
                jpeg = (
                    msg.raw
                    if msg.decoder is decode_jpeg_image
                    else encode_jpeg(payload.image, REENCODE_JPEG_QUALITY)
                )
                img = CompressedImage(
                    timestamp=_stamp(t), frame_id=s.frame, format="jpeg", data=jpeg
                )
                self._log(s.topic, img, log)
                cal = self.rig.sensors.get(msg.channel)
                if s.info and cal is not None and cal.camera is not None:
                    self._log(s.info, _camera_calibration(cal.camera, s.frame, t), log)
            case "pose" if msg.channel == ODOM_CHANNEL:
                if tm.odom:
                    self._log(tm.odom, _odom_json(payload.ego_to_global), log, "Pose")
            case "pose":
                tf = frame_transform(
                    FrameTransform, tm.map_frame, tm.ego_frame, payload.ego_to_global, t
                )
                self._log(tm.tf, tf, log)
            case "imu":
                if tm.imu:
                    self._log(tm.imu, _imu_json(payload), log, "IMU")
            case "gnss":
                if tm.gnss:
                    self._log(tm.gnss, _location_fix(payload, t), log)
            case "speed":
                if tm.speed:
                    self._log(tm.speed, json.dumps({"speed": payload.speed}).encode(), log, "Speed")

    def _sensor(self, msg: LogMessage):  # noqa: ANN202
        s = self._by_channel.get(msg.channel)
        if s is None:
            raise DataError(f"the topic map has no topic for {msg.channel}", self.topics.path)
        return s

    def close(self) -> None:
        if self._file.closed:
            return
        self._writer.finish()
        self._file.close()

    def __enter__(self) -> FoxgloveMcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def point_layout(kind: str) -> tuple[list[tuple[str, int, np.dtype]], int]:
    """(name, offset, dtype) of each packed field, and the stride: LIDAR x y z intensity ring
    float32 (20 bytes); radar the nuScenes PCD fields (43 bytes)."""
    if kind == "lidar":
        return [(n, 4 * i, np.dtype("<f4")) for i, n in enumerate(LIDAR_FIELDS)], 20
    return [
        (n, RADAR_DTYPE.fields[n][1], RADAR_DTYPE.fields[n][0]) for n in RADAR_DTYPE.names
    ], RADAR_DTYPE.itemsize


def point_bytes(kind: str, payload: Any) -> bytes:
    """The packed records of a LidarScan ((N, 5) float32 as is) or a RadarScan."""
    if kind == "lidar":
        return np.ascontiguousarray(payload.points, dtype="<f4").tobytes()
    return radar_records(payload.fields)


def _point_cloud(kind: str, payload: Any, frame: str, t_us: int) -> Any:
    return packed_point_cloud(point_layout(kind), point_bytes(kind, payload), frame, t_us)


def packed_point_cloud(
    layout: tuple[list[tuple[str, int, np.dtype]], int], data: bytes, frame: str, t_us: int
) -> Any:
    """A foxglove.PointCloud of packed records: `layout` is (name, offset, dtype) of each field
    and the stride (`point_layout`, or `float_layout` for float32 columns)."""
    from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
    from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

    fields_layout, stride = layout
    fields = [
        PackedElementField(name=n, offset=o, type=FOXGLOVE_NUMERIC_TYPE[(dt.kind, dt.itemsize)])
        for n, o, dt in fields_layout
    ]
    return PointCloud(
        timestamp=_stamp(t_us), frame_id=frame, point_stride=stride, fields=fields, data=data,
    )  # fmt: skip


def float_layout(names: tuple[str, ...]) -> tuple[list[tuple[str, int, np.dtype]], int]:
    """The layout of float32 columns named `names`, packed in that order."""
    return [(n, 4 * i, np.dtype("<f4")) for i, n in enumerate(names)], 4 * len(names)


def frame_transform(cls: Any, parent: str, child: str, tf: Transform, t_us: int) -> Any:
    from foxglove_schemas_protobuf.Quaternion_pb2 import Quaternion
    from foxglove_schemas_protobuf.Vector3_pb2 import Vector3

    x, y, z = (float(v) for v in tf.translation)
    w, qx, qy, qz = (float(v) for v in tf.quaternion)
    return cls(
        timestamp=_stamp(t_us), parent_frame_id=parent, child_frame_id=child,
        translation=Vector3(x=x, y=y, z=z), rotation=Quaternion(x=qx, y=qy, z=qz, w=w),
    )  # fmt: skip


def _camera_calibration(cam: PinholeCamera, frame: str, t_us: int) -> Any:
    from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration

    k = [float(v) for v in cam.intrinsics.reshape(-1)]
    p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]
    return CameraCalibration(
        timestamp=_stamp(t_us), frame_id=frame, width=cam.width, height=cam.height,
        distortion_model="", K=k, R=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], P=p,
    )  # fmt: skip


def _odom_json(tf: Transform) -> bytes:
    x, y, z = (float(v) for v in tf.translation)
    w, qx, qy, qz = (float(v) for v in tf.quaternion)
    msg = {"pos": {"x": x, "y": y, "z": z}, "orientation": {"w": w, "x": qx, "y": qy, "z": qz}}
    return json.dumps(msg).encode()


def _imu_json(imu: Any) -> bytes:
    a, w = imu.linear_acceleration, imu.angular_velocity
    msg = {
        "linear_accel": {"x": float(a[0]), "y": float(a[1]), "z": float(a[2])},
        "rotation_rate": {"x": float(w[0]), "y": float(w[1]), "z": float(w[2])},
    }
    return json.dumps(msg).encode()


def _location_fix(fix: Any, t_us: int) -> Any:
    from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix

    # LocationFix has no status field: a message without a fix carries NaN coordinates
    lost = fix.status < 0
    return LocationFix(
        timestamp=_stamp(t_us),
        frame_id="gps",
        latitude=math.nan if lost else float(fix.lat_deg),
        longitude=math.nan if lost else float(fix.lon_deg),
        altitude=math.nan if lost else float(fix.alt_m),
        position_covariance=[float(v) for v in np.ravel(fix.covariance)],
        position_covariance_type=int(fix.covariance_type),
    )
