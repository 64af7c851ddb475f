"""ROS logs without ROS: ROS 2 bags (a folder with metadata.yaml, `.mcap` or `.db3` storage), a
bare ROS 2 `.mcap` file, and ROS 1 `.bag` files; reader and writer.

Bags are read and written with `rosbags` (pure Python); a bare ROS 2 `.mcap` (no metadata.yaml)
is read with `mcap`, its CDR messages with `rosbags`' typestore. Messages: sensor_msgs
PointCloud2 (LIDAR, radar), CompressedImage and Image (cameras), CameraInfo (intrinsics), Imu;
nav_msgs Odometry (the CAN bus pose, `/odom`); tf2_msgs TFMessage on `/tf` (`map` ->
`base_link` ego poses) and `/tf_static` (`base_link` -> lowercase channel extrinsics). Topics
and frames come from the topic map (`configs/topics_nuscenes.toml` by default).

`timestamp_us` is each message's `header.stamp`, read from its fixed place in the bytes (no
deserialization); `log_time_us` is the bag's record time. Only TFMessages (small) are
deserialized while reading, to tell ego poses from extrinsics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from calibration import PinholeCamera, Transform
from fusion.data.sensor_io import encode_jpeg
from fusion.errors import DataError
from fusion.sources.base import LogMessage, Rig, SourceKind
from fusion.sources.decoders import (
    ROS_POINTFIELD_TYPE,
    RosFormat,
    decode_jpeg_image,
    deserialize_ros,
    library_errors,
    ros_decoder,
    ros_stamp_ns,
    typestore,
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
from fusion.sources.mcap import (
    REENCODE_JPEG_QUALITY,
    _open_summary,
    iter_mcap,
    point_bytes,
    point_layout,
)

Storage = Literal["mcap", "db3"]

_SENSOR_TYPES = {
    "lidar": ("sensor_msgs/msg/PointCloud2",),
    "radar": ("sensor_msgs/msg/PointCloud2",),
    "camera": ("sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/Image"),
}
_STREAM_TYPES = {
    "tf": "tf2_msgs/msg/TFMessage",
    "tf_static": "tf2_msgs/msg/TFMessage",
    "odom": "nav_msgs/msg/Odometry",
    "imu": "sensor_msgs/msg/Imu",
    "gnss": "sensor_msgs/msg/NavSatFix",
    "speed": "geometry_msgs/msg/TwistStamped",
}
_CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
_STRING = "std_msgs/msg/String"


def _rosbags_errors() -> tuple[type[BaseException], ...]:
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag1 import ReaderError as Reader1Error
    from rosbags.rosbag2 import ReaderError as Reader2Error
    from rosbags.serde import SerdeError

    return (AnyReaderError, Reader1Error, Reader2Error, SerdeError, OSError, ValueError, KeyError)


class _Log(Protocol):
    """The container of a ROS log: topics with types and counts, and raw records in order."""

    path: Path
    fmt: RosFormat
    kind: SourceKind
    types: dict[str, str]
    counts: dict[str, int]
    start_ns: int
    end_ns: int

    def iter(self, topics: list[str]) -> Iterator[tuple[str, int, bytes]]: ...


class _RosbagsLog(_Log):
    """A ROS 1 `.bag` or a ROS 2 bag folder, through rosbags' AnyReader."""

    def __init__(self, path: Path, kind: SourceKind) -> None:
        self.path, self.kind = path, kind
        self.fmt = "ros1" if kind == "ros1" else "cdr"
        with self._open() as reader:
            self.types = {c.topic: c.msgtype for c in reader.connections}
            self.counts = {}
            for c in reader.connections:
                self.counts[c.topic] = self.counts.get(c.topic, 0) + c.msgcount
            self.start_ns, self.end_ns = (
                (reader.start_time, reader.end_time) if self.counts else (0, 0)
            )

    def _open(self):  # noqa: ANN202
        from rosbags.highlevel import AnyReader

        try:
            reader = AnyReader([self.path], default_typestore=typestore(self.fmt))
            reader.open()
            reader.close()  # opened once to check it, entered again by the caller
        except FileNotFoundError as exc:
            raise DataError("file is missing", self.path) from exc
        except _rosbags_errors() as exc:
            raise DataError(f"not a readable {self.kind} bag: {exc}", self.path) from exc
        return reader

    def iter(self, topics: list[str]) -> Iterator[tuple[str, int, bytes]]:
        with ExitStack() as stack:
            reader = stack.enter_context(self._open())
            conns = [c for c in reader.connections if c.topic in topics]
            if not conns:
                return
            try:
                for conn, t_ns, raw in reader.messages(connections=conns):
                    yield conn.topic, t_ns, bytes(raw)
            except _rosbags_errors() as exc:
                raise DataError(f"corrupt {self.kind} bag: {exc}", self.path) from exc


class _Ros2McapLog(_Log):
    """A bare ROS 2 `.mcap` file (ros2msg/ros2idl schemas, CDR messages), through `mcap`."""

    kind: SourceKind = "ros2"
    fmt: RosFormat = "cdr"

    def __init__(self, path: Path) -> None:
        self.path = path
        f, _, summary = _open_summary(path)
        f.close()
        self.types = {
            c.topic: summary.schemas[c.schema_id].name if c.schema_id else ""
            for c in summary.channels.values()
        }
        counts = summary.statistics.channel_message_counts
        self.counts = {c.topic: counts.get(cid, 0) for cid, c in summary.channels.items()}
        self.start_ns = summary.statistics.message_start_time
        self.end_ns = summary.statistics.message_end_time

    def iter(self, topics: list[str]) -> Iterator[tuple[str, int, bytes]]:
        return iter_mcap(self.path, [t for t in topics if t in self.types])


def _ros_msgtype(name: str) -> str:
    """`sensor_msgs/PointCloud2` (ROS 1, mcap schema names) -> `sensor_msgs/msg/PointCloud2`."""
    parts = name.split("/")
    return f"{parts[0]}/msg/{parts[-1]}" if len(parts) == 2 else name


class RosbagSource:
    """A ROS 1 or ROS 2 log (see the module docstring). `path`: a ROS 2 bag folder (or a file
    inside one), a bare ROS 2 `.mcap`, or a ROS 1 `.bag`."""

    def __init__(
        self,
        path: str | Path,
        *,
        topics: TopicMap | None = None,
        rig: Rig | None = None,
    ) -> None:
        p = Path(path)
        if p.is_file() and (p.parent / "metadata.yaml").is_file() and p.suffix in (".mcap", ".db3"):
            p = p.parent  # a storage file inside a ROS 2 bag folder: read the bag
        self.path = p
        if p.is_dir():
            if not (p / "metadata.yaml").is_file():
                raise DataError("folder is not a ROS 2 bag (no metadata.yaml)", p)
            self._log: _Log = _RosbagsLog(p, "ros2")
        elif p.suffix == ".bag":
            self._log = _RosbagsLog(p, "ros1")
        elif p.suffix == ".mcap":
            self._log = _Ros2McapLog(p)
        elif not p.exists():
            raise DataError("file is missing", p)
        else:
            raise DataError("not a ROS log (.bag, .mcap or a bag folder)", p)
        self.kind: SourceKind = self._log.kind
        self.fmt = self._log.fmt
        self.topics = topics or load_topic_map()
        self._fallback = rig
        self._types = {t: _ros_msgtype(m) for t, m in self._log.types.items()}
        self.topics.check_against(self._types, self.path)
        self._check_types()
        self._keyframes: dict[tuple[str, int], str] = {}
        if KEYFRAMES_TOPIC in self._types:
            for _, _, raw in self._log.iter([KEYFRAMES_TOPIC]):
                msg = self._deserialize(raw, _STRING, KEYFRAMES_TOPIC)
                self._keyframes = parse_keyframes(
                    msg.data.encode(), f"{self.path}:{KEYFRAMES_TOPIC}"
                )
                break

    def _check_types(self) -> None:
        tm = self.topics
        for s in tm.sensors:
            have = self._types.get(s.topic)
            if have is not None and have not in _SENSOR_TYPES[s.kind]:
                raise DataError(
                    f"topic {s.topic} ({s.channel}) has type {have!r}, expected "
                    + " or ".join(_SENSOR_TYPES[s.kind]),
                    self.path,
                )
            if s.info and self._types.get(s.info, _CAMERA_INFO) != _CAMERA_INFO:
                raise DataError(f"topic {s.info} has type {self._types[s.info]!r}", self.path)
        for name, want in _STREAM_TYPES.items():
            topic = getattr(tm, name)
            have = self._types.get(topic) if topic else None
            if have is not None and have != want:
                raise DataError(f"topic {topic} has type {have!r}, expected {want!r}", self.path)

    def _deserialize(self, raw: bytes, msgtype: str, topic: str) -> Any:
        try:
            return deserialize_ros(raw, msgtype, self.fmt)
        except library_errors() as exc:  # rosbags SerdeError, struct errors on corrupt bytes
            raise DataError(f"cannot deserialize {msgtype}: {exc}", f"{self.path}:{topic}") from exc

    # -- the Source protocol -----------------------------------------------------------------
    def rig(self) -> Rig:
        """Extrinsics from /tf_static (or /tf) `base_link` -> sensor frame, intrinsics from
        CameraInfo (the first of each); the rest from the `rig` fallback."""
        tm = self.topics
        present = [s for s in tm.sensors if s.topic in self._types]
        by_frame = {s.frame: s.channel for s in present}
        by_info = {s.info: s.channel for s in present if s.info and s.info in self._types}
        extrinsics: dict[str, Transform] = {}
        cameras: dict[str, PinholeCamera] = {}
        others = tm.rig_frames()  # the GNSS antenna and the IMU (Rig.frames)
        frames: dict[str, Transform] = {}
        wanted = len(present) + len(by_info)
        for topic, _, raw in self._log.iter([t for t in (tm.tf_static, tm.tf, *by_info) if t]):
            if topic in by_info:
                ch = by_info[topic]
                if ch in cameras:
                    continue
                info = self._deserialize(raw, _CAMERA_INFO, topic)
                k = info.k if self.fmt == "cdr" else info.K
                try:
                    cameras[ch] = PinholeCamera(
                        np.asarray(k, dtype=np.float64).reshape(3, 3),
                        int(info.width),
                        int(info.height),
                    )
                except ValueError as exc:
                    raise DataError(
                        f"bad CameraInfo for {ch}: {exc}", f"{self.path}:{topic}"
                    ) from exc
            else:
                for tf in self._deserialize(raw, _STREAM_TYPES["tf"], topic).transforms:
                    child = tf.child_frame_id.lstrip("/")
                    if child in others and tf.header.frame_id.lstrip("/") == tm.ego_frame:
                        name = others[child]
                        t, r = tf.transform.translation, tf.transform.rotation
                        try:
                            frames.setdefault(
                                name,
                                Transform.from_translation_quaternion(
                                    (t.x, t.y, t.z), (r.w, r.x, r.y, r.z), src=name, dst="ego"
                                ),
                            )
                        except ValueError as exc:
                            raise DataError(
                                f"bad transform for {child}: {exc}", f"{self.path}:{topic}"
                            ) from exc
                        continue
                    ch = by_frame.get(child)
                    if (
                        ch is None
                        or ch in extrinsics
                        or tf.header.frame_id.lstrip("/") != tm.ego_frame
                    ):
                        continue
                    t, r = tf.transform.translation, tf.transform.rotation
                    try:
                        extrinsics[ch] = Transform.from_translation_quaternion(
                            (t.x, t.y, t.z), (r.w, r.x, r.y, r.z), src=ch, dst="ego"
                        )
                    except ValueError as exc:
                        raise DataError(
                            f"bad transform for {ch}: {exc}", f"{self.path}:{topic}"
                        ) from exc
            if len(extrinsics) + len(cameras) == wanted:
                break
        cams = [s.channel for s in present if s.kind == "camera"]
        found = ", ".join(f"{tm.ego_frame} -> {f}" for f, name in others.items() if name in frames)
        return complete_rig(
            [s.channel for s in present], extrinsics, cameras, cams, self._fallback, self.path,
            frames, f"{tm.tf_static or tm.tf} ({found})",
        )  # fmt: skip

    def messages(self) -> Iterator[LogMessage]:
        tm, fmt = self.topics, self.fmt
        sensors = {s.topic: s for s in tm.sensors if s.topic in self._types}
        decoders = {t: ros_decoder(s.kind, self._types[t], fmt) for t, s in sensors.items()}
        pose_decoder = ros_decoder(
            "pose", _STREAM_TYPES["tf"], fmt, parent=tm.map_frame, child=tm.ego_frame
        )
        odom_decoder = ros_decoder("pose", _STREAM_TYPES["odom"], fmt)
        imu_decoder = ros_decoder("imu", _STREAM_TYPES["imu"], fmt)
        gnss_decoder = ros_decoder("gnss", _STREAM_TYPES["gnss"], fmt)
        speed_decoder = ros_decoder("speed", _STREAM_TYPES["speed"], fmt)
        streams = [t for t in (tm.tf, tm.odom, tm.imu, tm.gnss, tm.speed) if t]
        for topic, log_ns, raw in self._log.iter([*sensors, *streams]):
            log_us = log_ns // 1000
            origin = f"{self.path}:{topic}@{log_ns}"
            if topic == tm.tf:
                try:
                    tfs = deserialize_ros(raw, _STREAM_TYPES["tf"], fmt).transforms
                except library_errors():
                    continue  # neither a readable pose nor an extrinsic
                for tf in tfs:
                    if (
                        tf.header.frame_id.lstrip("/") == tm.map_frame
                        and tf.child_frame_id.lstrip("/") == tm.ego_frame
                    ):
                        ts = tf.header.stamp.sec * 1_000_000 + tf.header.stamp.nanosec // 1000
                        yield LogMessage(
                            POSE_CHANNEL, "pose", ts, log_us, raw, pose_decoder, origin
                        )
                        break
                continue
            stamp = ros_stamp_ns(raw, fmt)
            ts = log_us if stamp is None else stamp // 1000
            if topic in sensors:
                s = sensors[topic]
                tok = self._keyframes.get((s.channel, ts))
                yield LogMessage(
                    s.channel,
                    s.kind,
                    ts,
                    log_us,
                    raw,
                    decoders[topic],
                    origin,
                    tok is not None,
                    tok,
                )
            elif topic == tm.odom:
                yield LogMessage(ODOM_CHANNEL, "pose", ts, log_us, raw, odom_decoder, origin)
            elif topic == tm.gnss:
                yield LogMessage(GNSS_CHANNEL, "gnss", ts, log_us, raw, gnss_decoder, origin)
            elif topic == tm.speed:
                yield LogMessage(SPEED_CHANNEL, "speed", ts, log_us, raw, speed_decoder, origin)
            else:
                yield LogMessage(IMU_CHANNEL, "imu", ts, log_us, raw, imu_decoder, origin)

    def info(self) -> Mapping[str, Any]:
        channels = self.topics.channel_counts(self._log.counts)
        start, end = self._log.start_ns // 1000, self._log.end_ns // 1000
        return {
            "path": str(self.path),
            "kind": self.kind,
            "channels": channels,
            "keyframes": sum(1 for ch, _ in self._keyframes if ch == "LIDAR_TOP"),
            "start_us": start,
            "end_us": end,
            "duration_s": (end - start) * 1e-6,
        }


class RosbagWriter:
    """Writes LogMessages as a ROS 2 bag folder (`mcap` or `db3` storage) or a ROS 1 `.bag`,
    with rosbags. The rig goes on /tf_static and each camera's CameraInfo once at the start;
    each image is followed by its CameraInfo. Record time = the message's `log_time_us`."""

    def __init__(
        self,
        path: str | Path,
        rig: Rig,
        *,
        ros: Literal["ros1", "ros2"] = "ros2",
        storage: Storage = "mcap",
        topics: TopicMap | None = None,
        keyframes: Mapping[str, list[tuple[int, str]]] | None = None,
        start_us: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.rig = rig
        self.topics = topics or load_topic_map()
        self.fmt: RosFormat = "ros1" if ros == "ros1" else "cdr"
        self.ts = typestore(self.fmt)
        self._keyframes = keyframes
        self._start_us = start_us  # log time of the calibration and keyframe marks
        if ros == "ros1":
            from rosbags.rosbag1 import Writer as Writer1

            self._writer: Any = Writer1(self.path)
        else:
            from rosbags.rosbag2 import StoragePlugin
            from rosbags.rosbag2 import Writer as Writer2

            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self._writer = Writer2(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._conns: dict[str, Any] = {}
        self._started = False
        self._by_channel = {s.channel: s for s in self.topics.sensors}
        self._seq = 0

    # -- message construction ---------------------------------------------------------------
    def _t(self, name: str) -> Any:
        return self.ts.types[name]

    def _header(self, t_us: int, frame: str) -> Any:
        sec, us = divmod(int(t_us), 1_000_000)
        stamp = self._t("builtin_interfaces/msg/Time")(sec=sec, nanosec=us * 1000)
        Header = self._t("std_msgs/msg/Header")  # noqa: N806
        if self.fmt == "ros1":
            self._seq += 1
            return Header(seq=self._seq, stamp=stamp, frame_id=frame)
        return Header(stamp=stamp, frame_id=frame)

    def _write(self, topic: str, msgtype: str, msg: Any, log_us: int) -> None:
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self.ts)
        if self.fmt == "cdr":
            data = self.ts.serialize_cdr(msg, msgtype)
        else:
            data = self.ts.serialize_ros1(msg, msgtype)
        self._writer.write(self._conns[topic], int(log_us) * 1000, data)

    def _transform(self, parent: str, child: str, tf: Transform, t_us: int) -> Any:
        x, y, z = (float(v) for v in tf.translation)
        w, qx, qy, qz = (float(v) for v in tf.quaternion)
        return self._t("geometry_msgs/msg/TransformStamped")(
            header=self._header(t_us, parent),
            child_frame_id=child,
            transform=self._t("geometry_msgs/msg/Transform")(
                translation=self._t("geometry_msgs/msg/Vector3")(x=x, y=y, z=z),
                rotation=self._t("geometry_msgs/msg/Quaternion")(x=qx, y=qy, z=qz, w=w),
            ),
        )

    def _camera_info(self, cam: PinholeCamera, frame: str, t_us: int) -> Any:
        k = np.asarray(cam.intrinsics, dtype=np.float64).reshape(-1)
        p = np.array([k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0])
        roi = self._t("sensor_msgs/msg/RegionOfInterest")(
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        mats = {"d": np.zeros(0), "k": k, "r": np.eye(3).reshape(-1), "p": p}
        if self.fmt == "ros1":
            mats = {key.upper(): v for key, v in mats.items()}
        return self._t(_CAMERA_INFO)(
            header=self._header(t_us, frame), height=cam.height, width=cam.width,
            distortion_model="", binning_x=0, binning_y=0, roi=roi, **mats,
        )  # fmt: skip

    def _point_cloud(self, kind: str, payload: Any, frame: str, t_us: int) -> Any:
        layout, stride = point_layout(kind)
        PointField = self._t("sensor_msgs/msg/PointField")  # noqa: N806
        fields = [
            PointField(
                name=n, offset=o, datatype=ROS_POINTFIELD_TYPE[(dt.kind, dt.itemsize)], count=1
            )
            for n, o, dt in layout
        ]
        data = np.frombuffer(point_bytes(kind, payload), dtype=np.uint8)
        n = len(data) // stride
        return self._t("sensor_msgs/msg/PointCloud2")(
            header=self._header(t_us, frame), height=1, width=n, fields=fields,
            is_bigendian=False, point_step=stride, row_step=n * stride, data=data, is_dense=True,
        )  # fmt: skip

    def _start(self, t_us: int) -> None:
        self._started = True
        tm = self.topics
        if self._keyframes is not None:
            msg = self._t(_STRING)(data=keyframes_json(self._keyframes).decode())
            self._write(KEYFRAMES_TOPIC, _STRING, msg, t_us)
        tfs = []
        for ch, cal in self.rig.sensors.items():
            s = self._by_channel.get(ch)
            if s is None:
                continue
            tfs.append(self._transform(tm.ego_frame, s.frame, cal.sensor_to_ego, t_us))
            if cal.camera is not None and s.info:
                self._write(
                    s.info, _CAMERA_INFO, self._camera_info(cal.camera, s.frame, t_us), t_us
                )
        by_name = {name: frame for frame, name in tm.rig_frames().items()}
        for name, to_ego in self.rig.frames.items():  # the GNSS antenna and the IMU
            if name in by_name:
                tfs.append(self._transform(tm.ego_frame, by_name[name], to_ego, t_us))
        if tfs and tm.tf_static:
            tf_msg = self._t("tf2_msgs/msg/TFMessage")(transforms=tfs)
            self._write(tm.tf_static, _STREAM_TYPES["tf_static"], tf_msg, t_us)

    def write(self, msg: LogMessage) -> None:
        if not self._started:
            self._start(msg.log_time_us if self._start_us is None else self._start_us)
        tm, t, log = self.topics, msg.timestamp_us, msg.log_time_us
        payload = msg.decode()
        match msg.kind:
            case "lidar" | "radar":
                s = self._sensor(msg)
                cloud = self._point_cloud(msg.kind, payload, s.frame, t)
                self._write(s.topic, "sensor_msgs/msg/PointCloud2", cloud, log)
            case "camera":
                s = self._sensor(msg)
                jpeg = (
                    msg.raw
                    if msg.decoder is decode_jpeg_image
                    else encode_jpeg(payload.image, REENCODE_JPEG_QUALITY)
                )
                img = self._t("sensor_msgs/msg/CompressedImage")(
                    header=self._header(t, s.frame), format="jpeg",
                    data=np.frombuffer(jpeg, dtype=np.uint8),
                )  # fmt: skip
                self._write(s.topic, "sensor_msgs/msg/CompressedImage", img, log)
                cal = self.rig.sensors.get(msg.channel)
                if s.info and cal is not None and cal.camera is not None:
                    self._write(
                        s.info, _CAMERA_INFO, self._camera_info(cal.camera, s.frame, t), log
                    )
            case "pose" if msg.channel == ODOM_CHANNEL:
                if tm.odom:
                    self._write(tm.odom, _STREAM_TYPES["odom"], self._odometry(payload, t), log)
            case "pose":
                tf_msg = self._t("tf2_msgs/msg/TFMessage")(
                    transforms=[
                        self._transform(tm.map_frame, tm.ego_frame, payload.ego_to_global, t)
                    ]
                )
                self._write(tm.tf, _STREAM_TYPES["tf"], tf_msg, log)
            case "imu":
                if tm.imu:
                    self._write(tm.imu, _STREAM_TYPES["imu"], self._imu(payload, t), log)
            case "gnss":
                if tm.gnss:
                    self._write(tm.gnss, _STREAM_TYPES["gnss"], self._navsatfix(payload, t), log)
            case "speed":
                if tm.speed:
                    self._write(tm.speed, _STREAM_TYPES["speed"], self._twist(payload, t), log)

    def _navsatfix(self, fix: Any, t_us: int) -> Any:
        status = self._t("sensor_msgs/msg/NavSatStatus")(status=int(fix.status), service=1)
        return self._t("sensor_msgs/msg/NavSatFix")(
            header=self._header(t_us, self.topics.gnss_frame or "gps"), status=status,
            latitude=float(fix.lat_deg),
            longitude=float(fix.lon_deg), altitude=float(fix.alt_m),
            position_covariance=np.asarray(fix.covariance, np.float64).reshape(9),
            position_covariance_type=int(fix.covariance_type),
        )  # fmt: skip

    def _twist(self, speed: Any, t_us: int) -> Any:
        V3 = self._t("geometry_msgs/msg/Vector3")  # noqa: N806
        twist = self._t("geometry_msgs/msg/Twist")(
            linear=V3(x=float(speed.speed), y=0.0, z=0.0), angular=V3(x=0.0, y=0.0, z=0.0)
        )
        return self._t(_STREAM_TYPES["speed"])(
            header=self._header(t_us, self.topics.ego_frame), twist=twist
        )

    def _odometry(self, payload: Any, t_us: int) -> Any:
        tf = payload.ego_to_global
        x, y, z = (float(v) for v in tf.translation)
        w, qx, qy, qz = (float(v) for v in tf.quaternion)
        V3 = self._t("geometry_msgs/msg/Vector3")  # noqa: N806
        zero = np.zeros(36)
        return self._t("nav_msgs/msg/Odometry")(
            header=self._header(t_us, self.topics.map_frame),
            child_frame_id=self.topics.ego_frame,
            pose=self._t("geometry_msgs/msg/PoseWithCovariance")(
                pose=self._t("geometry_msgs/msg/Pose")(
                    position=self._t("geometry_msgs/msg/Point")(x=x, y=y, z=z),
                    orientation=self._t("geometry_msgs/msg/Quaternion")(x=qx, y=qy, z=qz, w=w),
                ),
                covariance=zero,
            ),
            twist=self._t("geometry_msgs/msg/TwistWithCovariance")(
                twist=self._t("geometry_msgs/msg/Twist")(
                    linear=V3(x=0.0, y=0.0, z=0.0), angular=V3(x=0.0, y=0.0, z=0.0)
                ),
                covariance=zero,
            ),
        )

    def _imu(self, imu: Any, t_us: int) -> Any:
        V3 = self._t("geometry_msgs/msg/Vector3")  # noqa: N806
        w, a = imu.angular_velocity, imu.linear_acceleration
        unknown = np.zeros(9)
        unknown[0] = -1.0  # REP 145: orientation not estimated
        return self._t("sensor_msgs/msg/Imu")(
            header=self._header(t_us, self.topics.imu_frame or self.topics.ego_frame),
            orientation=self._t("geometry_msgs/msg/Quaternion")(x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=unknown,
            angular_velocity=V3(x=float(w[0]), y=float(w[1]), z=float(w[2])),
            angular_velocity_covariance=np.zeros(9),
            linear_acceleration=V3(x=float(a[0]), y=float(a[1]), z=float(a[2])),
            linear_acceleration_covariance=np.zeros(9),
        )

    def _sensor(self, msg: LogMessage):  # noqa: ANN202
        s = self._by_channel.get(msg.channel)
        if s is None:
            raise DataError(f"the topic map has no topic for {msg.channel}", self.topics.path)
        return s

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RosbagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
