"""Time sync: transforms between sensors at different times with ego poses from a GPS/IMU pose
stream (the rule, `fusion.frame.transform_between`, goes through the global frame; the online
synchronizer that builds frames from log messages is `fusion.stream`).
"""

from __future__ import annotations

from calibration import Transform
from fusion.frame import SensorPose, transform_between
from fusion.poses import PoseStream


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
