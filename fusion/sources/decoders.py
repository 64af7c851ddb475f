"""Decoders: the bytes of one log message -> its payload (`fusion.sources.base`).

Every decoder is `(raw: bytes, origin: str) -> Payload` (the ROS ones take their serialization
and frame names as keywords, bound with `functools.partial`), is a module-level function so a
`LogMessage` pickles into a decoding process, and raises `DataError(reason, origin)` for any
malformed input, never another exception. Camera decoders also take `reduction=k` (keyword,
default 1): a JPEG is then decoded at 1/k by libjpeg's DCT scaling (inference's fast path,
`fusion.sync.online.OnlineSynchronizer.decode`); what cannot be reduced (PNG, raw pixels) comes
full.

Containers are parsed by their libraries: nuScenes files by `fusion.data.sensor_io`, foxglove
messages by the `foxglove-schemas-protobuf` classes, ROS messages by `rosbags`' typestores.
Only the packed point layout inside a point cloud (fields, offsets, stride) is read here.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from fusion.data.sensor_io import decode_jpeg, decode_lidar_bin, decode_radar_pcd
from fusion.errors import DataError
from fusion.frame import RADAR_PCD_DTYPE
from fusion.sources.base import (
    CameraImage,
    EgoPose,
    GnssFix,
    ImuSample,
    LidarScan,
    Payload,
    RadarScan,
    VehicleSpeed,
)

RosFormat = Literal["cdr", "ros1"]

LIDAR_FIELDS = ("x", "y", "z", "intensity", "ring")

# The nuScenes radar PCD layout (devkit row order, `fusion.data.sensor_io.RADAR_PCD_DTYPE`): what
# every
# nuScenes radar file's header says, and what a converted log's point cloud carries.
RADAR_DTYPE = RADAR_PCD_DTYPE  # 43-byte packed records, as in the PCD body
RADAR_FIELD_NAMES: tuple[str, ...] = tuple(RADAR_PCD_DTYPE.names or ())
_RADAR_ONLY = frozenset(RADAR_FIELD_NAMES) - {"x", "y", "z"}

# Wire errors of the libraries we parse with; anything they raise on bad bytes becomes DataError.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    struct.error,
    UnicodeDecodeError,
    cv2.error,
)


@cache
def library_errors() -> tuple[type[BaseException], ...]:
    """What the protobuf and rosbags parsers raise on bad bytes."""
    from google.protobuf.message import DecodeError
    from rosbags.serde import SerdeError

    return (DecodeError, SerdeError, *_PARSE_ERRORS)


def _guard(what: str, origin: str, fn: Callable[[], Payload]) -> Payload:
    """Run a parse; a library error on malformed bytes becomes one DataError naming `origin`."""
    try:
        return fn()
    except DataError:
        raise
    except library_errors() as exc:
        raise DataError(f"malformed {what}: {type(exc).__name__}: {exc}", origin) from exc


# -- nuScenes files ------------------------------------------------------------------------------
def decode_nuscenes_lidar(raw: bytes, origin: str) -> LidarScan:
    """A `.pcd.bin` scan -> LidarScan (N, 5)."""
    return _guard("LIDAR scan", origin, lambda: LidarScan(decode_lidar_bin(raw, origin)))


def decode_nuscenes_radar(raw: bytes, origin: str) -> RadarScan:
    """A nuScenes radar `.pcd` -> RadarScan (18, N), unfiltered (filters belong to the pipeline)."""
    return _guard("radar PCD", origin, lambda: RadarScan(decode_radar_pcd(raw, origin, None)))


def decode_jpeg_image(raw: bytes, origin: str, *, reduction: int = 1) -> CameraImage:
    """JPEG (or PNG) bytes -> CameraImage (H, W, 3) RGB; with `reduction` k > 1 a JPEG is
    decoded at 1/k (ceil(H / k) x ceil(W / k), libjpeg's DCT scaling; a PNG stays full)."""
    return _guard("image", origin, lambda: CameraImage(decode_jpeg(raw, origin, None, reduction)))


def radar_records(fields: NDArray[np.float32]) -> bytes:
    """(18, N) radar fields -> the packed 43-byte PCD records (the inverse of the PCD body)."""
    rec = np.zeros(fields.shape[1], dtype=RADAR_DTYPE)
    for row, name in enumerate(RADAR_FIELD_NAMES):
        rec[name] = fields[row]
    return rec.tobytes()


# -- packed point clouds (foxglove.PointCloud, sensor_msgs/PointCloud2) -------------------------
def _packed_points(
    data: bytes,
    fields: Sequence[tuple[str, int, np.dtype]],
    stride: int,
    count: int,
    origin: str,
) -> np.ndarray:
    """`count` records of `stride` bytes with named fields at byte offsets -> structured array."""
    if stride <= 0:
        raise DataError(f"point stride must be positive, got {stride}", origin)
    if count * stride > len(data):
        raise DataError(f"{count} points of {stride} bytes need {count * stride} bytes", origin)
    for name, offset, dt in fields:
        if offset < 0 or offset + dt.itemsize > stride:
            raise DataError(f"field {name!r} at offset {offset} overruns stride {stride}", origin)
    names = [f[0] for f in fields]
    if len(set(names)) != len(names):
        raise DataError("point cloud has duplicate field names", origin)
    dtype = np.dtype(
        {
            "names": names,
            "formats": [f[2] for f in fields],
            "offsets": [f[1] for f in fields],
            "itemsize": stride,
        }
    )
    return np.frombuffer(data, dtype=dtype, count=count)


def _lidar_from_records(rec: np.ndarray, origin: str) -> LidarScan:
    names = rec.dtype.names or ()
    missing = [f for f in ("x", "y", "z") if f not in names]
    if missing:
        raise DataError(f"LIDAR point cloud lacks fields {missing}", origin)
    pts = np.zeros((len(rec), 5), dtype=np.float32)
    for col, name in enumerate(LIDAR_FIELDS):
        if name in names:  # a cloud without intensity or ring carries zeros there
            pts[:, col] = rec[name]
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise DataError(f"{int(bad.sum())} of {len(pts)} LIDAR points have NaN or Inf", origin)
    return LidarScan(pts)


def _radar_from_records(rec: np.ndarray, origin: str) -> RadarScan:
    names = rec.dtype.names or ()
    missing = [f for f in RADAR_FIELD_NAMES if f not in names]
    if missing:
        raise DataError(f"radar point cloud lacks the nuScenes fields {missing}", origin)
    pts = np.stack([rec[f].astype(np.float32) for f in RADAR_FIELD_NAMES]).reshape(18, len(rec))
    if pts.shape[1] and np.isnan(pts[0]).any():  # the devkit's marker of an empty cloud
        return RadarScan(np.zeros((18, 0), dtype=np.float32))
    if not np.isfinite(pts).all():
        raise DataError("radar points have NaN or Inf", origin)
    return RadarScan(pts)


# foxglove.PackedElementField.NumericType -> numpy
_FOXGLOVE_TYPES = {1: "u1", 2: "i1", 3: "<u2", 4: "<i2", 5: "<u4", 6: "<i4", 7: "<f4", 8: "<f8"}
# numpy (kind, itemsize) -> foxglove NumericType, for writing
FOXGLOVE_NUMERIC_TYPE = {("u", 1): 1, ("i", 1): 2, ("u", 2): 3, ("i", 2): 4, ("u", 4): 5}
FOXGLOVE_NUMERIC_TYPE |= {("i", 4): 6, ("f", 4): 7, ("f", 8): 8}


def _foxglove_records(raw: bytes, origin: str) -> np.ndarray:
    from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

    pc = PointCloud.FromString(raw)
    stride = int(pc.point_stride)
    if stride <= 0:
        raise DataError(f"point stride must be positive, got {stride}", origin)
    if len(pc.data) % stride:
        raise DataError(f"{len(pc.data)} data bytes is not a multiple of stride {stride}", origin)
    fields = []
    for f in pc.fields:
        if f.type not in _FOXGLOVE_TYPES:
            raise DataError(f"field {f.name!r} has unknown numeric type {f.type}", origin)
        fields.append((f.name, int(f.offset), np.dtype(_FOXGLOVE_TYPES[f.type])))
    return _packed_points(pc.data, fields, stride, len(pc.data) // stride, origin)


def decode_foxglove_lidar(raw: bytes, origin: str) -> LidarScan:
    """foxglove.PointCloud (x y z [intensity ring]) -> LidarScan."""
    return _guard(
        "foxglove PointCloud",
        origin,
        lambda: _lidar_from_records(_foxglove_records(raw, origin), origin),
    )


def decode_foxglove_radar(raw: bytes, origin: str) -> RadarScan:
    """foxglove.PointCloud with the 18 nuScenes radar fields -> RadarScan."""
    return _guard(
        "foxglove PointCloud",
        origin,
        lambda: _radar_from_records(_foxglove_records(raw, origin), origin),
    )


def decode_foxglove_pointcloud(raw: bytes, origin: str) -> LidarScan | RadarScan:
    """foxglove.PointCloud -> RadarScan when it has any radar field, else LidarScan. Any one
    radar field (not only `rcs`) decides, so a cloud with one radar field name corrupted is an
    error (the radar decoder wants all 18), not a LIDAR scan."""

    def run() -> Payload:
        rec = _foxglove_records(raw, origin)
        if _RADAR_ONLY & set(rec.dtype.names or ()):
            return _radar_from_records(rec, origin)
        return _lidar_from_records(rec, origin)

    return _guard("foxglove PointCloud", origin, run)  # type: ignore[return-value]


def decode_foxglove_image(raw: bytes, origin: str, *, reduction: int = 1) -> CameraImage:
    """foxglove.CompressedImage (jpeg or png) -> CameraImage (a JPEG at 1/`reduction`, as
    `decode_jpeg_image`)."""
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage

    def run() -> Payload:
        msg = CompressedImage.FromString(raw)
        if msg.format.lower() not in ("jpeg", "jpg", "png"):
            raise DataError(f"unsupported image format {msg.format!r}", origin)
        return CameraImage(decode_jpeg(msg.data, origin, None, reduction))

    return _guard("foxglove CompressedImage", origin, run)  # type: ignore[return-value]


def _pose(translation: Sequence[float], rotation_wxyz: Sequence[float], origin: str) -> EgoPose:
    t = np.array(translation, dtype=np.float64)  # own copy: kept read-only
    q = np.asarray(rotation_wxyz, dtype=np.float64)
    if t.shape != (3,) or q.shape != (4,):
        raise DataError("pose needs a finite translation (3) and quaternion (4)", origin)
    values = t.tolist() + q.tolist()  # plain floats: a pose is 7 numbers, per message
    if not all(math.isfinite(v) for v in values):
        raise DataError("pose needs a finite translation (3) and quaternion (4)", origin)
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-3:
        raise DataError(f"pose quaternion is not a unit quaternion (norm {norm:.4g})", origin)
    q = q / norm
    if q[0] < 0:  # q and -q are one rotation: w >= 0, as `Transform.quaternion` gives it
        q = -q
    t.setflags(write=False), q.setflags(write=False)
    return EgoPose(translation=t, quaternion=q)


def _imu(angular_velocity: Sequence[float], linear_acceleration: Sequence[float], origin: str):
    w = np.asarray(angular_velocity, dtype=np.float64)
    a = np.asarray(linear_acceleration, dtype=np.float64)
    if w.shape != (3,) or a.shape != (3,) or not (np.isfinite(w).all() and np.isfinite(a).all()):
        raise DataError("IMU sample needs finite angular velocity and acceleration (3)", origin)
    return ImuSample(w, a)


def decode_foxglove_transform(raw: bytes, origin: str) -> EgoPose:
    """foxglove.FrameTransform `map` -> `base_link` -> EgoPose (global <- ego)."""
    from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform

    def run() -> Payload:
        tf = FrameTransform.FromString(raw)
        t, r = tf.translation, tf.rotation
        return _pose((t.x, t.y, t.z), (r.w, r.x, r.y, r.z), origin)

    return _guard("foxglove FrameTransform", origin, run)  # type: ignore[return-value]


# -- JSON channels of the CAN bus (nuscenes2mcap's /odom and /imu) ------------------------------
def _xyz(d: Any) -> tuple[float, float, float]:
    return (float(d["x"]), float(d["y"]), float(d["z"]))


def _wxyz(d: Any) -> tuple[float, float, float, float]:
    return (float(d["w"]), float(d["x"]), float(d["y"]), float(d["z"]))


def _json(raw: bytes, origin: str) -> dict:
    try:
        msg = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"malformed JSON message: {exc}", origin) from exc
    if not isinstance(msg, dict):
        raise DataError("JSON message must be an object", origin)
    return msg


def decode_json_odom(raw: bytes, origin: str) -> EgoPose:
    """/odom JSON (`pos`, `orientation` w x y z; CAN bus `pose`) -> EgoPose."""

    def run() -> Payload:
        msg = _json(raw, origin)
        return _pose(_xyz(msg["pos"]), _wxyz(msg["orientation"]), origin)

    return _guard("/odom JSON", origin, run)  # type: ignore[return-value]


def decode_json_imu(raw: bytes, origin: str) -> ImuSample:
    """/imu JSON (`rotation_rate`, `linear_accel`; CAN bus `ms_imu`) -> ImuSample."""

    def run() -> Payload:
        msg = _json(raw, origin)
        return _imu(_xyz(msg["rotation_rate"]), _xyz(msg["linear_accel"]), origin)

    return _guard("/imu JSON", origin, run)  # type: ignore[return-value]


def _fix(
    lat: float,
    lon: float,
    alt: float,
    cov: Sequence[float],
    cov_type: int,
    status: int,
    origin: str,
) -> GnssFix:
    c = np.asarray(cov, dtype=np.float64)
    if c.size != 9:
        raise DataError(f"GNSS fix covariance must hold 9 numbers, got {c.size}", origin)
    return GnssFix(float(lat), float(lon), float(alt), c.reshape(3, 3), int(cov_type), int(status))


def decode_json_speed(raw: bytes, origin: str) -> VehicleSpeed:
    """Speed JSON (`speed`, m/s) -> VehicleSpeed."""

    def run() -> Payload:
        return VehicleSpeed(float(_json(raw, origin)["speed"]))

    return _guard("speed JSON", origin, run)  # type: ignore[return-value]


def decode_foxglove_location_fix(raw: bytes, origin: str) -> GnssFix:
    """foxglove.LocationFix -> GnssFix. It has no status field: NaN coordinates mark a
    message without a fix (status -1), any other is a fix (status 0)."""
    from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix

    def run() -> Payload:
        m = LocationFix.FromString(raw)
        cov = list(m.position_covariance) or [0.0] * 9
        status = -1 if math.isnan(m.latitude) or math.isnan(m.longitude) else 0
        cov_type = m.position_covariance_type
        return _fix(m.latitude, m.longitude, m.altitude, cov, cov_type, status, origin)

    return _guard("foxglove LocationFix", origin, run)  # type: ignore[return-value]


# -- packed float64 records (the dataroot's poses and IMU samples) ------------------------------
def pose_record(translation: Sequence[float], rotation_wxyz: Sequence[float]) -> bytes:
    """7 float64 little-endian: x y z (m) qw qx qy qz (global <- ego)."""
    return np.concatenate([translation, rotation_wxyz]).astype("<f8").tobytes()


def imu_record(angular_velocity: Sequence[float], linear_acceleration: Sequence[float]) -> bytes:
    """6 float64 little-endian: angular velocity (rad/s) then linear acceleration (m/s^2)."""
    return np.concatenate([angular_velocity, linear_acceleration]).astype("<f8").tobytes()


def gnss_record(
    lat: float, lon: float, alt: float, cov: Sequence[float], cov_type: int, status: int
) -> bytes:
    """14 float64 little-endian: lat lon (deg) alt (m), covariance (9), type, status."""
    return np.array([lat, lon, alt, *np.ravel(cov), cov_type, status], "<f8").tobytes()


def decode_gnss_record(raw: bytes, origin: str) -> GnssFix:
    if len(raw) != 112:
        raise DataError(f"GNSS record must be 112 bytes (14 float64), got {len(raw)}", origin)
    v = np.frombuffer(raw, dtype="<f8")
    return _fix(v[0], v[1], v[2], v[3:12], int(v[12]), int(v[13]), origin)


def speed_record(speed: float) -> bytes:
    return np.array([speed], "<f8").tobytes()


def decode_speed_record(raw: bytes, origin: str) -> VehicleSpeed:
    if len(raw) != 8:
        raise DataError(f"speed record must be 8 bytes (1 float64), got {len(raw)}", origin)
    return VehicleSpeed(float(np.frombuffer(raw, dtype="<f8")[0]))


def decode_pose_record(raw: bytes, origin: str) -> EgoPose:
    if len(raw) != 56:
        raise DataError(f"pose record must be 56 bytes (7 float64), got {len(raw)}", origin)
    v = np.frombuffer(raw, dtype="<f8")
    return _guard("pose record", origin, lambda: _pose(v[:3], v[3:7], origin))  # type: ignore[return-value]


def decode_imu_record(raw: bytes, origin: str) -> ImuSample:
    if len(raw) != 48:
        raise DataError(f"IMU record must be 48 bytes (6 float64), got {len(raw)}", origin)
    v = np.frombuffer(raw, dtype="<f8")
    return _imu(v[:3], v[3:], origin)


# -- ROS messages (rosbags typestores) ----------------------------------------------------------
@cache
def typestore(fmt: RosFormat):  # noqa: ANN201
    """The rosbags typestore of a serialization: ROS 2 Humble for CDR, Noetic for ROS 1."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    if fmt == "cdr":
        return get_typestore(Stores.ROS2_HUMBLE)
    store = get_typestore(Stores.ROS1_NOETIC)
    # rosbags' Noetic store lacks tf2_msgs; its definition is one line (md5 94810edd...).
    store.register(
        get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage")
    )
    return store


def deserialize_ros(raw: bytes, msgtype: str, fmt: RosFormat) -> Any:
    ts = typestore(fmt)
    if fmt == "cdr":
        return ts.deserialize_cdr(raw, msgtype)
    return ts.deserialize_ros1(raw, msgtype)


def ros_stamp_ns(raw: bytes, fmt: RosFormat) -> int | None:
    """The `header.stamp` (ns) of a message whose first field is a std_msgs/Header, read from
    its fixed place in the bytes (no deserialization), or None when the bytes are too short.
    CDR: 4-byte encapsulation, then int32 sec, uint32 nanosec. ROS 1: uint32 seq, then
    uint32 secs, uint32 nsecs (little-endian)."""
    if len(raw) < 12:
        return None
    if fmt == "cdr":
        endian = "<" if raw[1] & 1 else ">"
        sec, nsec = struct.unpack_from(endian + "iI", raw, 4)
    else:
        sec, nsec = struct.unpack_from("<II", raw, 4)
    return sec * 1_000_000_000 + nsec


# sensor_msgs/PointField datatype -> numpy (little-endian; big-endian clouds swap below)
_ROS_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
# numpy (kind, itemsize) -> PointField datatype, for writing
ROS_POINTFIELD_TYPE = {("i", 1): 1, ("u", 1): 2, ("i", 2): 3, ("u", 2): 4, ("i", 4): 5}
ROS_POINTFIELD_TYPE |= {("u", 4): 6, ("f", 4): 7, ("f", 8): 8}


def _ros_records(raw: bytes, origin: str, fmt: RosFormat) -> np.ndarray:
    msg = deserialize_ros(raw, "sensor_msgs/msg/PointCloud2", fmt)
    order = ">" if msg.is_bigendian else "<"
    fields = []
    for f in msg.fields:
        if f.datatype not in _ROS_TYPES:
            raise DataError(f"field {f.name!r} has unknown datatype {f.datatype}", origin)
        if f.count != 1:
            raise DataError(f"field {f.name!r} has count {f.count}; only 1 is supported", origin)
        fields.append((f.name, int(f.offset), np.dtype(order + _ROS_TYPES[f.datatype])))
    width, height, step, row_step = (
        int(msg.width),
        int(msg.height),
        int(msg.point_step),
        int(msg.row_step),
    )
    data = bytes(msg.data)
    if height * row_step > len(data) or row_step < width * step:
        raise DataError(
            f"PointCloud2 of {height}x{width} points, row_step {row_step}, point_step {step} "
            f"does not fit {len(data)} data bytes",
            origin,
        )
    if row_step != width * step:  # padded rows: drop the padding
        data = b"".join(data[r * row_step : r * row_step + width * step] for r in range(height))
    return _packed_points(data, fields, step, width * height, origin)


def decode_ros_lidar(raw: bytes, origin: str, *, fmt: RosFormat) -> LidarScan:
    """sensor_msgs/PointCloud2 (x y z [intensity ring]) -> LidarScan."""
    return _guard(
        "PointCloud2", origin, lambda: _lidar_from_records(_ros_records(raw, origin, fmt), origin)
    )


def decode_ros_radar(raw: bytes, origin: str, *, fmt: RosFormat) -> RadarScan:
    """sensor_msgs/PointCloud2 with the 18 nuScenes radar fields -> RadarScan."""
    return _guard(
        "PointCloud2", origin, lambda: _radar_from_records(_ros_records(raw, origin, fmt), origin)
    )


def decode_ros_compressed_image(
    raw: bytes, origin: str, *, fmt: RosFormat, reduction: int = 1
) -> CameraImage:
    """sensor_msgs/CompressedImage (jpeg or png) -> CameraImage (a JPEG at 1/`reduction`, as
    `decode_jpeg_image`)."""

    def run() -> Payload:
        msg = deserialize_ros(raw, "sensor_msgs/msg/CompressedImage", fmt)
        return CameraImage(decode_jpeg(bytes(msg.data), origin, None, reduction))

    return _guard("CompressedImage", origin, run)  # type: ignore[return-value]


_IMAGE_ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
_IMAGE_ENCODINGS |= {"rgba8": (4, cv2.COLOR_RGBA2RGB), "bgra8": (4, cv2.COLOR_BGRA2RGB)}


def decode_ros_image(raw: bytes, origin: str, *, fmt: RosFormat, reduction: int = 1) -> CameraImage:
    """sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8) -> CameraImage, always in full:
    raw pixels have no cheaper reduced decode, so `reduction` (accepted like every camera
    decoder's) is ignored and the consumer uses the full-size camera model."""

    def run() -> Payload:
        msg = deserialize_ros(raw, "sensor_msgs/msg/Image", fmt)
        enc = msg.encoding.lower()
        if enc not in _IMAGE_ENCODINGS:
            raise DataError(f"unsupported image encoding {msg.encoding!r}", origin)
        channels, conversion = _IMAGE_ENCODINGS[enc]
        h, w, step = int(msg.height), int(msg.width), int(msg.step)
        data = bytes(msg.data)
        if h <= 0 or w <= 0 or step < w * channels or len(data) < h * step:
            raise DataError(
                f"image {w}x{h} {enc}, step {step}, does not fit {len(data)} bytes", origin
            )
        rows = np.frombuffer(data, np.uint8, count=h * step).reshape(h, step)
        img = np.ascontiguousarray(rows[:, : w * channels].reshape(h, w, channels))
        return CameraImage(img if conversion is None else cv2.cvtColor(img, conversion))

    return _guard("Image", origin, run)  # type: ignore[return-value]


def decode_ros_tf(raw: bytes, origin: str, *, fmt: RosFormat, parent: str, child: str) -> EgoPose:
    """tf2_msgs/TFMessage holding `parent` -> `child` (map -> base_link) -> EgoPose."""

    def run() -> Payload:
        msg = deserialize_ros(raw, "tf2_msgs/msg/TFMessage", fmt)
        for tf in msg.transforms:
            if tf.header.frame_id.lstrip("/") == parent and tf.child_frame_id.lstrip("/") == child:
                t, r = tf.transform.translation, tf.transform.rotation
                return _pose((t.x, t.y, t.z), (r.w, r.x, r.y, r.z), origin)
        raise DataError(f"TFMessage has no {parent} -> {child} transform", origin)

    return _guard("TFMessage", origin, run)  # type: ignore[return-value]


def decode_ros_odometry(raw: bytes, origin: str, *, fmt: RosFormat) -> EgoPose:
    """nav_msgs/Odometry -> EgoPose (its pose, read as global <- ego)."""

    def run() -> Payload:
        msg = deserialize_ros(raw, "nav_msgs/msg/Odometry", fmt)
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        return _pose((p.x, p.y, p.z), (q.w, q.x, q.y, q.z), origin)

    return _guard("Odometry", origin, run)  # type: ignore[return-value]


def decode_ros_navsatfix(raw: bytes, origin: str, *, fmt: RosFormat) -> GnssFix:
    """sensor_msgs/NavSatFix -> GnssFix."""

    def run() -> Payload:
        m = deserialize_ros(raw, "sensor_msgs/msg/NavSatFix", fmt)
        return _fix(
            m.latitude, m.longitude, m.altitude, m.position_covariance,
            m.position_covariance_type, m.status.status, origin,
        )  # fmt: skip

    return _guard("NavSatFix", origin, run)  # type: ignore[return-value]


def decode_ros_twist(raw: bytes, origin: str, *, fmt: RosFormat) -> VehicleSpeed:
    """geometry_msgs/TwistStamped -> VehicleSpeed (its forward linear velocity)."""

    def run() -> Payload:
        return VehicleSpeed(float(deserialize_ros(raw, _TWIST, fmt).twist.linear.x))

    return _guard("TwistStamped", origin, run)  # type: ignore[return-value]


_TWIST = "geometry_msgs/msg/TwistStamped"


def decode_ros_imu(raw: bytes, origin: str, *, fmt: RosFormat) -> ImuSample:
    """sensor_msgs/Imu -> ImuSample."""

    def run() -> Payload:
        msg = deserialize_ros(raw, "sensor_msgs/msg/Imu", fmt)
        w, a = msg.angular_velocity, msg.linear_acceleration
        return _imu((w.x, w.y, w.z), (a.x, a.y, a.z), origin)

    return _guard("Imu", origin, run)  # type: ignore[return-value]


def ros_decoder(
    kind: str, msgtype: str, fmt: RosFormat, **frames: str
) -> Callable[[bytes, str], Payload]:
    """The decoder of a ROS message type for a message kind, bound to its serialization."""
    table: dict[tuple[str, str], Callable[..., Payload]] = {
        ("lidar", "sensor_msgs/msg/PointCloud2"): decode_ros_lidar,
        ("radar", "sensor_msgs/msg/PointCloud2"): decode_ros_radar,
        ("camera", "sensor_msgs/msg/CompressedImage"): decode_ros_compressed_image,
        ("camera", "sensor_msgs/msg/Image"): decode_ros_image,
        ("pose", "tf2_msgs/msg/TFMessage"): decode_ros_tf,
        ("pose", "nav_msgs/msg/Odometry"): decode_ros_odometry,
        ("imu", "sensor_msgs/msg/Imu"): decode_ros_imu,
        ("gnss", "sensor_msgs/msg/NavSatFix"): decode_ros_navsatfix,
        ("speed", _TWIST): decode_ros_twist,
    }
    fn = table.get((kind, msgtype))
    if fn is None:
        raise KeyError((kind, msgtype))
    return partial(fn, fmt=fmt, **frames)
