"""The rig file (`configs/rig_nuscenes.toml` format): each sensor's mounting, intrinsics, rate
and noise. `fusion generate` simulates it; log sources take from it the calibration of sensors
a log carries none for (`fusion.sources.layout.rig_from_file`).

Mountings are `calibrated_sensor` records: translation (m) and rotation (w, x, y, z) of
sensor -> ego. Sensor frames follow nuScenes: LIDAR_TOP x right, y forward, z up; cameras
x right, y down, z forward; radars x forward, y left, z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera, Transform, yaw_from_quaternion
from calibration.geodesy import GeodeticOrigin
from fusion.config import CONFIG_DIR, load_dataclass
from fusion.errors import ConfigError
from fusion.localization.estimator import LocalizationConfig

DEFAULT_RIG = CONFIG_DIR / "rig_nuscenes.toml"


class _Mounted:
    """A sensor fixed on the car: its `channel` and mounting (`translation` m, `rotation`
    quaternion w x y z) in the ego frame."""

    channel: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]

    @property
    def to_ego(self) -> Transform:
        return Transform.from_translation_quaternion(
            self.translation, self.rotation, src=self.channel, dst="ego"
        )


@dataclass(frozen=True)
class LidarSpec(_Mounted):
    """A spinning LIDAR. `spin_start_deg`: azimuth (deg, ccw from ego +x) of the beam at the
    start of a sweep; it then turns clockwise (seen from above) once per sweep."""

    channel: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    rate_hz: float
    elevations_deg: tuple[float, ...]
    azimuth_steps: int
    spin_start_deg: float
    min_range: float
    max_range: float
    range_noise: float  # m, 1 sigma
    dropout: float  # probability that a return is lost in clear weather
    # rays without a return: "origin" stores them at the sensor origin as nuScenes does
    # (fixed point count a sweep), "drop" leaves them out
    no_return: Literal["origin", "drop"] = "origin"

    @property
    def period_us(self) -> int:
        return int(round(1e6 / self.rate_hz))


@dataclass(frozen=True)
class CameraSpec(_Mounted):
    """A pinhole camera, triggered when the LIDAR spin crosses the centre of its view."""

    channel: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    intrinsic: tuple[
        tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]
    ]
    width: int
    height: int
    rate_hz: float

    def camera(self, width: int | None = None, height: int | None = None) -> PinholeCamera:
        """The pinhole model at the rig's size, or scaled to (width, height)."""
        cam = PinholeCamera(np.array(self.intrinsic), self.width, self.height)
        if width is None or height is None or (width, height) == (self.width, self.height):
            return cam
        return cam.scaled(width / self.width, height / self.height)

    @property
    def azimuth_deg(self) -> float:
        """Heading of the optical axis in the ego frame (deg, ccw from ego +x)."""
        axis = self.to_ego.rotation @ np.array([0.0, 0.0, 1.0])
        return math.degrees(math.atan2(axis[1], axis[0]))


@dataclass(frozen=True)
class RadarSpec(_Mounted):
    """A 77 GHz radar: a near beam (wide, short) and a far beam (narrow, long)."""

    channel: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    rate_hz: float
    phase_ms: float  # offset of its first message from the LIDAR clock (ms)
    near_fov_deg: float
    near_range: float
    far_fov_deg: float
    far_range: float
    clutter_rays: int  # rays cast into the static world per sweep for clutter returns
    invalid_fraction: float  # share of returns flagged invalid (the devkit's filter drops them)

    @property
    def yaw(self) -> float:
        return yaw_from_quaternion(self.rotation)


@dataclass(frozen=True)
class ImuSpec:
    """GPS/IMU noise (1 sigma) and constant biases of the CAN bus `ms_imu` messages."""

    accel_noise: float  # m/s^2
    gyro_noise: float  # rad/s
    accel_bias: tuple[float, float, float]
    gyro_bias: tuple[float, float, float]
    pose_position_noise: float  # m, on the CAN `pose` messages
    accel_bias_walk: float  # m/s^2/sqrt(s), random walk of the accelerometer bias
    gyro_bias_walk: float  # rad/s/sqrt(s), random walk of the gyro bias
    wheel_speed_noise: float  # m/s, 1 sigma of each wheel speed (`zoe_veh_info`, 100 Hz)


@dataclass(frozen=True)
class GnssNoise:
    """One receiver mode: horizontal and vertical sigma (m), the share of fixes lost (dropout)
    and of multipath outliers, thrown `outlier_m` m (uniform in [0.5, 1] times that)."""

    sigma_h: float
    sigma_v: float
    dropout: float
    outlier_rate: float
    outlier_m: float


@dataclass(frozen=True)
class GnssSpec:
    """The GNSS receiver: antenna position in the ego frame (m), rate, the map origin placed at
    a real latitude and longitude (deg, m), the fix latency (stamp minus measurement time, s)
    and the noise of each mode."""

    translation: tuple[float, float, float]
    rate_hz: float
    origin_lat_deg: float
    origin_lon_deg: float
    origin_alt_m: float
    time_offset_s: float
    std: GnssNoise
    rtk: GnssNoise

    @property
    def map_origin(self) -> GeodeticOrigin:
        """The geodetic origin of the map's global frame (its ENU frame)."""
        return GeodeticOrigin(self.origin_lat_deg, self.origin_lon_deg, self.origin_alt_m)

    def noise(self, mode: Literal["std", "rtk"]) -> GnssNoise:
        match mode:
            case "std":
                return self.std
            case "rtk":
                return self.rtk


@dataclass(frozen=True)
class RigSpec:
    """The rig file (`configs/rig_nuscenes.toml`): what each sensor is (LIDAR beams, camera
    intrinsics and mounts, radars, IMU, GNSS), from which the generator simulates it and a log
    without calibration is calibrated. `fusion.sources.base.Rig` is the other concept: the
    calibration of a log's sensors by channel (`layout.rig_from_file` makes one from this)."""

    name: str
    lidar: LidarSpec
    cameras: tuple[CameraSpec, ...]
    radars: tuple[RadarSpec, ...]
    imu: ImuSpec
    gnss: GnssSpec

    @property
    def channels(self) -> tuple[str, ...]:
        return (
            self.lidar.channel,
            *(c.channel for c in self.cameras),
            *(r.channel for r in self.radars),
        )

    def elevations_rad(self) -> NDArray[np.float64]:
        return np.radians(np.asarray(self.lidar.elevations_deg, dtype=np.float64))


def load_rig(path: str | Path | None = None) -> RigSpec:
    """Load a rig TOML (default `configs/rig_nuscenes.toml`) and check it is usable."""
    path = Path(path) if path is not None else DEFAULT_RIG
    rig = load_dataclass(RigSpec, path)
    names = rig.channels
    if len(set(names)) != len(names):
        raise ConfigError("channel names must be unique", path)
    if not rig.cameras:
        raise ConfigError("the rig needs at least one camera", path)
    if rig.lidar.azimuth_steps < 8 or len(rig.lidar.elevations_deg) < 1:
        raise ConfigError("lidar needs elevations and at least 8 azimuth steps", path)
    for spec in (rig.lidar, *rig.cameras, *rig.radars):
        if spec.rate_hz <= 0:
            raise ConfigError(f"{spec.channel}: rate_hz must be positive", path)
        if abs(np.linalg.norm(spec.rotation) - 1.0) > 1e-3:
            raise ConfigError(
                f"{spec.channel}: rotation must be a unit quaternion (w, x, y, z)", path
            )
    for cam in rig.cameras:
        try:
            cam.camera()
        except ValueError as exc:
            raise ConfigError(f"{cam.channel}: {exc}", path) from exc
    return rig


def localization_from_rig(
    path: str | Path | None = None,
) -> tuple[LocalizationConfig, GeodeticOrigin]:
    """The estimator's GNSS antenna lever arm and fix latency from a rig file's `[gnss]` (default
    `configs/rig_nuscenes.toml`, the generator's), and the geodetic origin of its map."""
    g = load_rig(path).gnss
    config = LocalizationConfig(antenna_in_ego=g.translation, gnss_time_offset_s=g.time_offset_s)
    return config, g.map_origin
