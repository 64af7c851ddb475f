"""The one pose source of a run, online and offline: the log's localization, or ego poses
estimated from its GNSS, IMU and wheel speed.

`choose_pose_source` is the one rule, for the replay's synchronizer (`fusion.sync.online`) and
the offline reader (`fusion.data.reader`) alike: `--poses log` takes the log's localization,
`gnss-imu` the estimator, `auto` the first when the log has one, else the second; a choice the
log cannot serve is a DataError. What feeds the estimator lives with the data it reads: a
dataroot scene's run, `fusion.data.canbus.scene_poses`; the calibration from a rig file's
`[gnss]`, `fusion.data.rig_file.localization_from_rig`; from a log's static transforms,
`fusion.sources.layout.localization_from_frames`.
"""

from __future__ import annotations

from typing import Literal

from fusion.errors import DataError
from fusion.localization.estimator import POSE_SOURCE

PoseChoice = Literal["auto", "log", "gnss-imu"]
POSE_CHOICES: tuple[PoseChoice, ...] = ("auto", "log", "gnss-imu")
LOG = "log"
# what each source is, in the summaries: the replay's pose channels (`pose`, `odom`), the
# offline reader's `log` (the ego_pose table), and the estimator
POSE_SOURCE_TEXT = {
    "pose": "the log's localization (/tf map->base_link or ego_pose)",
    "odom": "the log's localization (CAN bus pose, /odom)",
    LOG: "the log's localization (ego_pose)",
    POSE_SOURCE: "estimated from GNSS, IMU and wheel speed (error-state EKF, causal)",
    "none": "none (the log has no localization and no GNSS + IMU)",
}


def choose_pose_source(
    choice: PoseChoice,
    has_log: bool,
    can_estimate: bool,
    log_names: str = "/tf map->base_link, /odom",
    estimate_needs: str = "IMU and GNSS messages",
) -> str | None:
    """`log`, `gnss-imu` (`POSE_SOURCE`), or None when the log has neither localization nor
    GNSS + IMU (every trigger then lacks a pose). `log_names` and `estimate_needs` name what
    is missing in the error of a forced choice the log cannot serve."""
    if choice not in POSE_CHOICES:
        raise ValueError(f"poses must be one of {POSE_CHOICES}, got {choice!r}")
    if choice == "log" and not has_log:
        raise DataError(f"--poses log: the log has no localization ({log_names})")
    if choice == POSE_SOURCE and not can_estimate:
        raise DataError(f"--poses gnss-imu: the log needs {estimate_needs}")
    if choice == POSE_SOURCE or (choice == "auto" and not has_log and can_estimate):
        return POSE_SOURCE
    return LOG if has_log else None
