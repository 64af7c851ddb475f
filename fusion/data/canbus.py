"""Estimator inputs from a dataroot's CAN bus files: `ms_imu` (100 Hz), wheel speeds
(`zoe_veh_info`, 100 Hz, else `vehicle_monitor`, 2 Hz) and GNSS fixes (`gnss`).

A file that is not a list of records with the needed keys is a DataError naming it; a value
that is NaN or out of range is passed on, for the estimator to reject and count.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fusion.data.sensor_io import read_json
from fusion.errors import DataError
from fusion.localization.measurements import GnssFixes, ImuSamples, SpeedSamples

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
