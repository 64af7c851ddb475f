"""A dataroot's CAN bus files (`<dataroot>/can_bus/<scene>_*.json`): the logged `pose` stream
with `ms_imu` (`load_can_bus`, what the reader fuses), and the pose estimator's inputs
(`load_scene_inputs`): `ms_imu` (100 Hz), wheel speeds (`zoe_veh_info`, 100 Hz, else
`vehicle_monitor`, 2 Hz) and GNSS fixes (`gnss`).

A file that is not a list of records with the needed keys is a DataError naming it; a value
that is NaN or out of range is passed on, for the estimator to reject and count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from calibration.geodesy import GeodeticOrigin
from fusion.data.sensor_io import read_json
from fusion.errors import DataError
from fusion.localization.estimator import EstimatedPoses, LocalizationConfig, estimate_poses
from fusion.localization.measurements import GnssFixes, ImuSamples, SpeedSamples
from fusion.motion.poses import PoseStream, record_column, record_quaternions, record_times

WHEEL_RADIUS = 0.305  # m, the Renault Zoe of nuScenes (the devkit's CAN bus tutorial)


def _records(path: Path, what: str) -> list[dict]:
    data = read_json(path, what)
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise DataError(f"{what} file must hold a JSON list of objects", path)
    return data


def _array(records: list[dict], key: str, width: int | None, path: Path | None, what: str):
    shape = (len(records),) if width is None else (len(records), width)
    try:
        arr = np.array([r[key] for r in records], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{what}: {key!r} missing or not numbers ({exc!r})", path) from None
    if len(records) and arr.shape != shape:
        raise DataError(f"{what}: {key!r} must hold {width or 1} number(s) each", path)
    return arr.reshape(shape)


def _times(records: list[dict], path: Path | None, what: str) -> NDArray[np.int64]:
    t = _array(records, "utime", None, path, what)
    if not np.isfinite(t).all() or (t != np.round(t)).any():
        raise DataError(f"{what}: 'utime' must be integer microseconds", path)
    return t.astype(np.int64)


def imu_from_records(records: list[dict], path: Path | None = None) -> ImuSamples:
    """`ms_imu` records: rotation_rate (rad/s) and linear_accel (m/s^2), the ego frame."""
    what = "CAN bus ms_imu"
    return ImuSamples(
        _times(records, path, what),
        _array(records, "rotation_rate", 3, path, what),
        _array(records, "linear_accel", 3, path, what),
    )


def speed_from_wheels(records: list[dict], path: Path | None = None) -> SpeedSamples:
    """`zoe_veh_info` records: the mean of the rear wheel speeds (rpm), which straddle the rear
    axle (the ego origin), in m/s."""
    what = "CAN bus zoe_veh_info"
    rl = _array(records, "RL_wheel_speed", None, path, what)
    rr = _array(records, "RR_wheel_speed", None, path, what)
    return SpeedSamples(
        _times(records, path, what), 0.5 * (rl + rr) * 2 * math.pi * WHEEL_RADIUS / 60.0
    )


def speed_from_vehicle_monitor(records: list[dict], path: Path | None = None) -> SpeedSamples:
    """`vehicle_monitor` records: vehicle_speed (km/h) in m/s."""
    what = "CAN bus vehicle_monitor"
    v = _array(records, "vehicle_speed", None, path, what)
    return SpeedSamples(_times(records, path, what), v / 3.6)


def fixes_from_records(records: list[dict], path: Path | None = None) -> GnssFixes:
    """GNSS records shaped as NavSatFix: utime, latitude, longitude, altitude (deg, deg, m),
    position_covariance (9, ENU, row-major), position_covariance_type, status."""
    what = "GNSS fixes"
    n = len(records)
    return GnssFixes(
        _times(records, path, what),
        _array(records, "latitude", None, path, what),
        _array(records, "longitude", None, path, what),
        _array(records, "altitude", None, path, what),
        _array(records, "position_covariance", 9, path, what).reshape(n, 3, 3),
        _array(records, "position_covariance_type", None, path, what).astype(np.int64),
        _array(records, "status", None, path, what).astype(np.int64),
    )


def load_scene_inputs(
    dataroot: str | Path, scene_name: str
) -> tuple[ImuSamples, SpeedSamples, GnssFixes] | None:
    """IMU, speed and GNSS of one scene from `<dataroot>/can_bus/`, or None when the scene has
    no IMU or no GNSS file there (a speed stream is optional: an empty one is returned)."""
    root = Path(dataroot) / "can_bus"
    imu_path, gnss_path = root / f"{scene_name}_ms_imu.json", root / f"{scene_name}_gnss.json"
    if not imu_path.is_file() or not gnss_path.is_file():
        return None
    imu = imu_from_records(_records(imu_path, "CAN bus ms_imu"), imu_path)
    gnss = fixes_from_records(_records(gnss_path, "GNSS fixes"), gnss_path)
    wheels, monitor = (
        root / f"{scene_name}_zoe_veh_info.json",
        root / f"{scene_name}_vehicle_monitor.json",
    )
    if wheels.is_file():
        speed = speed_from_wheels(_records(wheels, "CAN bus zoe_veh_info"), wheels)
    elif monitor.is_file():
        speed = speed_from_vehicle_monitor(_records(monitor, "CAN bus vehicle_monitor"), monitor)
    else:
        speed = SpeedSamples(np.zeros(0, np.int64), np.zeros(0))
    return imu, speed, gnss


@dataclass(frozen=True, eq=False)
class CanBus:
    """One scene's CAN bus: the `pose` stream (50 Hz) and the `ms_imu` messages (100 Hz)."""

    pose: PoseStream
    imu_timestamps_us: NDArray[np.int64]
    imu_rotation_rate: NDArray[np.float64]  # (T, 3) rad/s, ego frame
    imu_linear_accel: NDArray[np.float64]  # (T, 3) m/s^2, ego frame
    pose_velocity: NDArray[np.float64]  # (T, 3) m/s in the ego frame, as logged

    def yaw_rate(self, timestamp_us: int) -> float:
        """IMU yaw rate (rad/s) at `timestamp_us`, linearly interpolated."""
        if len(self.imu_timestamps_us) == 0:
            return self.pose.yaw_rate(timestamp_us)
        return float(np.interp(timestamp_us, self.imu_timestamps_us, self.imu_rotation_rate[:, 2]))

    def velocity(self, timestamp_us: int) -> NDArray[np.float64]:
        """Logged ego velocity (3,) m/s at `timestamp_us`, linearly interpolated."""
        t = self.pose.timestamps_us
        return np.array([np.interp(timestamp_us, t, self.pose_velocity[:, k]) for k in range(3)])


def _load_messages(path: Path) -> list[dict]:
    """A CAN bus message file: a JSON list of objects, or a DataError naming the file."""
    data = read_json(path, "CAN bus messages")
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise DataError("CAN bus message file must hold a JSON list of objects", path)
    return data


SCENE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a name that is safe in a file name


def load_can_bus(dataroot: str | Path, scene_name: str) -> CanBus | None:
    """`<dataroot>/can_bus/<scene>_pose.json` (+ `_ms_imu.json`) or None when absent.

    Every malformed file (not JSON, not UTF-8, a message lacking a key or holding a string
    where numbers belong, NaN, a zero quaternion) is a DataError naming the file.
    """
    root = Path(dataroot) / "can_bus"
    if not root.is_dir():
        return None
    if not isinstance(scene_name, str) or not SCENE_NAME.fullmatch(scene_name):
        raise DataError(
            f"scene name {scene_name!r} cannot name a CAN bus file (letters, digits, _ . -)", root
        )
    pose_path = root / f"{scene_name}_pose.json"
    if not pose_path.is_file():
        return None
    msgs = _load_messages(pose_path)
    if not msgs:
        raise DataError("CAN bus pose file has no messages", pose_path)
    what = "CAN bus pose"
    pose = PoseStream(
        record_times(msgs, "utime", pose_path, what),
        record_column(msgs, "pos", 3, pose_path, what),
        record_quaternions(msgs, "orientation", pose_path, what),
        source="can_bus pose",
    )
    vel = record_column(msgs, "vel", 3, pose_path, what)
    order = np.argsort(record_times(msgs, "utime", pose_path, what), kind="stable")
    imu_path = root / f"{scene_name}_ms_imu.json"
    imu = _load_messages(imu_path) if imu_path.is_file() else []
    what = "CAN bus ms_imu"
    imu_t = record_times(imu, "utime", imu_path, what)
    imu_order = np.argsort(imu_t, kind="stable")
    return CanBus(
        pose=pose,
        imu_timestamps_us=imu_t[imu_order],
        imu_rotation_rate=record_column(imu, "rotation_rate", 3, imu_path, what)[imu_order].reshape(
            -1, 3
        ),
        imu_linear_accel=record_column(imu, "linear_accel", 3, imu_path, what)[imu_order].reshape(
            -1, 3
        ),
        pose_velocity=vel[order],
    )


def has_scene_inputs(dataroot: str | Path, scene_name: str) -> bool:
    """Whether a dataroot scene has what the estimator needs (CAN bus IMU and GNSS files)."""
    can = Path(dataroot) / "can_bus"
    return (can / f"{scene_name}_ms_imu.json").is_file() and (
        can / f"{scene_name}_gnss.json"
    ).is_file()


def scene_poses(
    dataroot: str | Path,
    scene_name: str,
    config: LocalizationConfig | None = None,
    frame_origin: GeodeticOrigin | None = None,
) -> EstimatedPoses | None:
    """The estimator over one dataroot scene's IMU, speed and GNSS, in receive order (each pose
    uses only the messages stamped up to its time), in the ENU frame of `frame_origin` (else of
    the first fix); None when the scene has no IMU or GNSS file. A malformed file is a
    DataError naming it."""
    inputs = load_scene_inputs(dataroot, scene_name)
    if inputs is None:
        return None
    imu, speed, fixes = inputs
    poses = estimate_poses(imu, fixes, speed, config)
    if frame_origin is not None and poses.origin is not None:
        poses = poses.in_frame(frame_origin)
    return poses
