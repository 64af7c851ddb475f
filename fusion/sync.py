"""Time sync: transforms between sensors at different times (the online synchronizer that builds
frames from log messages is `fusion.stream`).

A point seen by sensor A at time tA maps to sensor B at time tB through
`B <- ego(tB) <- global <- ego(tA) <- A`; the global hop is never skipped, because the ego
moves between tA and tB (at 10 m/s, 1 m per 100 ms).
"""

from __future__ import annotations

from calibration import Transform
from fusion.frame import SensorPose
from fusion.poses import PoseStream


def transform_between(src: SensorPose, dst: SensorPose) -> Transform:
    """dst sensor (at dst time) <- src sensor (at src time), through the global frame."""
    a = src.sensor_to_ego.matrix
    src_sensor = Transform(a, src=src.channel, dst=f"ego@{src.timestamp_us}")
    src_ego = Transform(src.ego_to_global.matrix, src=f"ego@{src.timestamp_us}", dst="global")
    dst_ego = Transform(dst.ego_to_global.matrix, src=f"ego@{dst.timestamp_us}", dst="global")
    dst_sensor = Transform(dst.sensor_to_ego.matrix, src=dst.channel, dst=f"ego@{dst.timestamp_us}")
    return dst_sensor.inverse() @ dst_ego.inverse() @ src_ego @ src_sensor


def transform_at(
    poses: PoseStream,
    src_to_ego: Transform,
    src_time_us: int,
    dst_to_ego: Transform,
    dst_time_us: int,
) -> Transform:
    """Like `transform_between`, with ego poses interpolated from a GPS/IMU pose stream."""
    return transform_between(
        SensorPose(src_to_ego.src, src_time_us, src_to_ego, poses.at(src_time_us)),
        SensorPose(dst_to_ego.src, dst_time_us, dst_to_ego, poses.at(dst_time_us)),
    )
