"""GPS/IMU and vehicle CAN bus messages of one scene, in the devkit's `can_bus/` layout:
`<scene>_<message>.json` for pose (50 Hz), ms_imu (100 Hz), vehicle_monitor (2 Hz),
zoe_veh_info (100 Hz, wheel speeds), steeranglefeedback (100 Hz), meta (a dict of per-message
stats) and route (a list of [x, y])."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fusion.data.rig_file import ImuSpec
from fusion.synth.trajectory import EgoTrack, Path

GRAVITY = 9.81
STEERING_RATIO = 15.0  # steering wheel angle / road wheel angle
WHEEL_RADIUS = 0.305  # m, the Zoe's wheel radius of the devkit's CAN bus tutorial
REAR_TRACK = 1.51  # m, distance between the rear wheels


@dataclass(frozen=True, eq=False)
class CanBusMessages:
    pose: list[dict]
    ms_imu: list[dict]
    vehicle_monitor: list[dict]
    steeranglefeedback: list[dict]
    meta: dict
    route: list[list[float]]
    zoe_veh_info: list[dict]

    def files(self) -> dict[str, object]:
        """Message name -> JSON-able content."""
        return {
            "pose": self.pose,
            "ms_imu": self.ms_imu,
            "vehicle_monitor": self.vehicle_monitor,
            "zoe_veh_info": self.zoe_veh_info,
            "steeranglefeedback": self.steeranglefeedback,
            "meta": self.meta,
            "route": self.route,
        }


def _quat(yaw: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.column_stack(
        [np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)]
    )


def _stats(messages: list[dict]) -> dict:
    """Per numeric key: min, max, mean (the shape of the real `meta` stats)."""
    out: dict[str, dict[str, float]] = {}
    if not messages:
        return out
    for key in messages[0]:
        vals = np.array([m[key] for m in messages], dtype=np.float64)
        out[key] = {"min": float(vals.min()), "max": float(vals.max()), "mean": float(vals.mean())}
    return out


def can_bus_messages(
    track: EgoTrack,
    lane: Path,
    t0_us: int,
    start_s: float,
    end_s: float,
    imu: ImuSpec,
    rng: np.random.Generator,
) -> CanBusMessages:
    """Messages from `start_s` to `end_s` (s on the world clock; utime = t0_us + 1e6 * s)."""

    def times(rate: float) -> tuple[NDArray[np.float64], list[int]]:
        step_us = int(round(1e6 / rate))
        first = int(math.ceil((t0_us + start_s * 1e6) / step_us)) * step_us
        us = np.arange(first, t0_us + end_s * 1e6 + 1, step_us, dtype=np.int64)
        return (us - t0_us) / 1e6, [int(u) for u in us]

    ts, utime = times(50.0)
    xy, yaw = track.state(ts)
    speed = track.sample(ts, track.speed)
    yr = track.sample(ts, track.yaw_rate)
    al = track.sample(ts, track.accel_long)
    at = track.sample(ts, track.accel_lat)
    q = _quat(yaw)
    noise = (
        rng.normal(0, imu.pose_position_noise, (len(ts), 2)) if imu.pose_position_noise > 0 else 0.0
    )
    pos = xy + noise
    pose = [
        {
            "utime": utime[i],
            "pos": [float(pos[i, 0]), float(pos[i, 1]), 0.0],
            "orientation": [float(v) for v in q[i]],
            "vel": [float(speed[i]), 0.0, 0.0],
            "accel": [float(al[i]), float(at[i]), 0.0],
            "rotation_rate": [0.0, 0.0, float(yr[i])],
        }
        for i in range(len(ts))
    ]

    ts, utime = times(100.0)
    _, yaw = track.state(ts)
    q = _quat(yaw)
    yr = track.sample(ts, track.yaw_rate)
    acc = np.column_stack(
        [
            track.sample(ts, track.accel_long),
            track.sample(ts, track.accel_lat),
            np.full(len(ts), GRAVITY),
        ]
    )
    acc = acc + np.asarray(imu.accel_bias) + rng.normal(0, imu.accel_noise, acc.shape)
    rate = np.column_stack([np.zeros(len(ts)), np.zeros(len(ts)), yr])
    rate = rate + np.asarray(imu.gyro_bias) + rng.normal(0, imu.gyro_noise, rate.shape)
    # the biases also wander (a random walk from the configured turn-on bias)
    step = np.sqrt(1.0 / 100.0)
    acc = acc + np.cumsum(rng.normal(0, imu.accel_bias_walk * step, acc.shape), axis=0)
    rate = rate + np.cumsum(rng.normal(0, imu.gyro_bias_walk * step, rate.shape), axis=0)
    ms_imu = [
        {
            "utime": utime[i],
            "linear_accel": [float(v) for v in acc[i]],
            "q": [float(v) for v in q[i]],
            "rotation_rate": [float(v) for v in rate[i]],
        }
        for i in range(len(ts))
    ]
    steer = track.sample(ts, track.steering) * STEERING_RATIO
    steeranglefeedback = [{"utime": utime[i], "value": float(steer[i])} for i in range(len(ts))]
    zoe_veh_info = _wheel_speeds(track, ts, utime, imu.wheel_speed_noise, rng)

    ts, utime = times(2.0)
    speed = track.sample(ts, track.speed)
    vehicle_monitor = [
        {
            "utime": utime[i],
            "vehicle_speed": float(speed[i] * 3.6),
            "yaw_rate": float(math.degrees(track.sample(ts[i], track.yaw_rate))),
            "steering": float(math.degrees(track.sample(ts[i], track.steering) * STEERING_RATIO)),
            "steering_speed": 0.0,
            "available_distance": 150.0,
            "battery_level": 80.0,
            "brake": int(track.sample(ts[i], track.accel_long) < -0.5) * 20,
            "brake_switch": 1,
            "gear_position": 7,
            "left_signal": 0,
            "right_signal": 0,
            "throttle": 100,
            "rear_left_rpm": float(speed[i] / 0.31 * 60 / (2 * math.pi)),
            "rear_right_rpm": float(speed[i] / 0.31 * 60 / (2 * math.pi)),
            "front_left_wheel_speed": float(speed[i] * 3.6),
        }
        for i in range(len(ts))
    ]
    # the baseline route: the lane the ego follows, every 5 m near the drive
    s_ego, _ = lane.nearest(track.state(np.array([start_s, end_s]))[0])
    s = np.arange(max(0.0, s_ego[0] - 20), min(lane.length, s_ego[1] + 20), 5.0)
    pts, _ = lane.at(s)
    route = [[float(x), float(y)] for x, y in pts]
    msgs = {
        "pose": pose,
        "ms_imu": ms_imu,
        "vehicle_monitor": vehicle_monitor,
        "zoe_veh_info": zoe_veh_info,
        "steeranglefeedback": steeranglefeedback,
    }
    meta = {
        name: _stats([{k: v for k, v in m.items() if not isinstance(v, list)} for m in lst])
        for name, lst in msgs.items()
    }
    return CanBusMessages(
        pose, ms_imu, vehicle_monitor, steeranglefeedback, meta, route, zoe_veh_info
    )


def _wheel_speeds(
    track: EgoTrack,
    ts: NDArray[np.float64],
    utime: list[int],
    noise: float,
    rng: np.random.Generator,
) -> list[dict]:
    """`zoe_veh_info` at 100 Hz: the four wheel speeds in rpm (the rear ones straddle the rear
    axle, so their mean is the ego's speed), each with `noise` m/s of noise."""
    speed = track.sample(ts, track.speed)
    yr = track.sample(ts, track.yaw_rate)
    half = 0.5 * REAR_TRACK * yr
    wheels = np.column_stack([speed - half, speed + half, speed - half, speed + half])
    wheels = wheels + rng.normal(0, noise, wheels.shape)
    rpm = wheels / WHEEL_RADIUS * 60 / (2 * math.pi)
    steer = track.sample(ts, track.steering) * STEERING_RATIO
    return [
        {
            "utime": utime[i],
            "FL_wheel_speed": float(rpm[i, 0]),
            "FR_wheel_speed": float(rpm[i, 1]),
            "RL_wheel_speed": float(rpm[i, 2]),
            "RR_wheel_speed": float(rpm[i, 3]),
            "steer_corrected": float(math.degrees(steer[i])),
            "odom_speed": float(speed[i] * 3.6),
        }
        for i in range(len(ts))
    ]
