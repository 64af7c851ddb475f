"""One interface for every log source: a time-ordered stream of raw sensor messages.

A source (a nuScenes dataroot scene, a Foxglove MCAP, a ROS 2 bag, a ROS 1 bag) yields
`LogMessage`s in log-time order. Each message carries its payload as bytes and the function
that decodes them, so a replay can read in one thread and decode in another, and a corrupted
message fails in `decode()` with `DataError` instead of in the reader.

Decoded payloads, by kind (all sensor data in the sensor's own frame):
- "lidar":  `LidarScan`  (N, 5) float32 x y z (m) intensity ring
- "radar":  `RadarScan`  (18, N) float32, the nuScenes radar PCD fields (devkit row order)
- "camera": `CameraImage` (H, W, 3) uint8 RGB
- "pose":   `EgoPose`    global <- ego at the message's timestamp
- "imu":    `ImuSample`  angular velocity (rad/s) and linear acceleration (m/s^2), ego frame
- "gnss":   `GnssFix`    a WGS84 fix of the antenna (NavSatFix, foxglove.LocationFix)
- "speed":  `VehicleSpeed` forward speed of the ego (m/s): wheel speed, a vehicle twist

Calibration (sensor -> ego extrinsics, camera intrinsics) is static per log: a source returns
it from `rig()` as a `Rig`, read from the log's own calibration messages (camera_info, tf) or
from `--rig`.

Times are microseconds. `timestamp_us` is the sensor's own time (the field to sync on);
`log_time_us` is when the message was logged (the field to pace a replay by). Foxglove's
nuscenes2mcap logs keyframe messages at the LIDAR keyframe's time, so the two differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera, Transform

MessageKind = Literal["lidar", "radar", "camera", "pose", "imu", "gnss", "speed"]
SourceKind = Literal["dataroot", "mcap", "ros2", "ros1"]


@dataclass(frozen=True, eq=False)
class LidarScan:
    points: NDArray[np.float32]  # (N, 5) x y z intensity ring, LIDAR frame


@dataclass(frozen=True, eq=False)
class RadarScan:
    fields: NDArray[np.float32]  # (18, N), rows as the devkit's RadarPointCloud.points


@dataclass(frozen=True, eq=False)
class CameraImage:
    image: NDArray[np.uint8]  # (H, W, 3) RGB


class EgoPose:
    """global <- ego: a `Transform`, or (the decoders) a translation (3,) and a unit quaternion
    (w, x, y, z) whose matrix is built the first time `ego_to_global` is asked for. The online
    synchronizer keeps poses as translation and quaternion, so a replay's poses (one per sensor
    message in nuScenes) need no matrix."""

    __slots__ = ("_transform", "_translation", "_quaternion")

    def __init__(
        self,
        ego_to_global: Transform | None = None,
        *,
        translation: NDArray[np.float64] | None = None,
        quaternion: NDArray[np.float64] | None = None,
    ) -> None:
        if (ego_to_global is None) == (translation is None or quaternion is None):
            raise ValueError("EgoPose takes a Transform, or a translation and a quaternion")
        self._transform = ego_to_global
        self._translation = translation
        self._quaternion = quaternion

    @property
    def ego_to_global(self) -> Transform:
        if self._transform is None:
            self._transform = Transform.from_translation_quaternion(
                self._translation, self._quaternion, src="ego", dst="global"
            )
        return self._transform

    @property
    def translation(self) -> NDArray[np.float64]:
        return self.ego_to_global.translation if self._translation is None else self._translation

    @property
    def quaternion(self) -> NDArray[np.float64]:
        """(w, x, y, z), unit, w >= 0."""
        if self._quaternion is None:
            self._quaternion = self.ego_to_global.quaternion
        return self._quaternion


@dataclass(frozen=True, eq=False)
class ImuSample:
    angular_velocity: NDArray[np.float64]  # (3,) rad/s, ego frame
    linear_acceleration: NDArray[np.float64]  # (3,) m/s^2, ego frame


@dataclass(frozen=True, eq=False)
class GnssFix:
    """A fix as NavSatFix holds it: latitude, longitude (deg), altitude (m), position
    covariance (3, 3) m^2 in ENU, its type (0 unknown) and the status (-1 no fix). Values are
    not checked here: the pose estimator rejects and counts a bad fix."""

    lat_deg: float
    lon_deg: float
    alt_m: float
    covariance: NDArray[np.float64]
    covariance_type: int
    status: int


@dataclass(frozen=True, eq=False)
class VehicleSpeed:
    speed: float  # m/s, forward, ego frame


Payload = LidarScan | RadarScan | CameraImage | EgoPose | ImuSample | GnssFix | VehicleSpeed


@dataclass(frozen=True, eq=False)
class LogMessage:
    """One message of a log. `channel` is the nuScenes sensor channel (`LIDAR_TOP`,
    `CAM_FRONT`, `RADAR_FRONT`, ...) for sensor kinds, and the stream name (`pose`, `imu`)
    otherwise. `decode()` raises `fusion.errors.DataError` (naming `origin`) on bad bytes."""

    channel: str
    kind: MessageKind
    timestamp_us: int  # sensor time
    log_time_us: int  # log (arrival) time
    raw: bytes
    decoder: Callable[[bytes, str], Payload]  # (raw, origin) -> payload
    origin: str  # file (and topic) the message came from, for error messages
    is_keyframe: bool = False  # a nuScenes keyframe (sample) message, where the source knows
    sample_token: str | None = None  # the nuScenes sample of a keyframe, where known

    def decode(self) -> Payload:
        return self.decoder(self.raw, self.origin)

    def with_raw(self, raw: bytes) -> LogMessage:
        """The same message with other bytes (fault injection)."""
        return LogMessage(
            self.channel,
            self.kind,
            self.timestamp_us,
            self.log_time_us,
            raw,
            self.decoder,
            self.origin,
            self.is_keyframe,
            self.sample_token,
        )


@dataclass(frozen=True, eq=False)
class SensorCalibration:
    """`sensor_to_ego`: ego <- sensor. `camera`: the pinhole model for cameras, else None."""

    channel: str
    sensor_to_ego: Transform
    camera: PinholeCamera | None = None


@dataclass(frozen=True, eq=False)
class Rig:
    """Calibration of every sensor of a log, by channel; `frames`: the rig's frames that are not
    sensors, by name, `gnss` (the GNSS antenna -> ego; its position is the lever arm) and `imu`
    (IMU -> ego), from the log's static transforms or the rig file; `frames_origin` says where
    they came from."""

    sensors: Mapping[str, SensorCalibration] = field(default_factory=dict)
    frames: Mapping[str, Transform] = field(default_factory=dict)
    frames_origin: str = ""

    def __getitem__(self, channel: str) -> SensorCalibration:
        return self.sensors[channel]

    def __contains__(self, channel: object) -> bool:
        return channel in self.sensors


class Source(Protocol):
    """A log: its path, kind, calibration, and messages in log-time order."""

    path: Path
    kind: SourceKind

    def rig(self) -> Rig: ...

    def messages(self) -> Iterator[LogMessage]: ...

    def info(self) -> Mapping[str, Any]:
        """Channels with message counts, start/end time (us), duration (s); `log_delay_us`
        where the source states the most a message is logged after its stamp (a dataroot: 0)."""
        ...
