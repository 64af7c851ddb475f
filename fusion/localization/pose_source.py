"""The one pose source of a run, online and offline: the log's localization, or ego poses
estimated from its GNSS, IMU and wheel speed.

- `choose_pose_source`: the one rule, for the replay's synchronizer (`fusion.stream`) and the
  offline reader (`fusion.nuscenes`) alike: `--poses log` takes the log's localization,
  `gnss-imu` the estimator, `auto` the first when the log has one, else the second; a choice
  the log cannot serve is a DataError.
- `scene_poses`: the estimator run causally over one scene of a dataroot (`can_bus/<scene>_`
  `ms_imu`, `zoe_veh_info` / `vehicle_monitor` and `gnss`, as `fusion generate --gnss` writes
  them), its poses taken to the dataroot's global frame through WGS84 when that frame's
  geodetic origin is known (the rig's `[gnss]` origin).
- `localization_from_rig`: the estimator's calibration (antenna lever arm, fix latency) and the
  map's geodetic origin from a rig file's `[gnss]` section; `localization_from_frames`: the
  lever arm and the IMU extrinsic from a log's static transforms (`Rig.frames`: `/tf_static`
  of a ROS bag, `/tf` of an MCAP file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from calibration import Transform
from calibration.geodesy import GeodeticOrigin
from fusion.errors import DataError
from fusion.localization.estimator import (
    POSE_SOURCE,
    EstimatedPoses,
    LocalizationConfig,
    estimate_poses,
)
from fusion.localization.inputs import load_scene_inputs
from fusion.sources.layout import GNSS_CHANNEL, IMU_CHANNEL
from fusion.sources.rig_file import load_rig

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


def localization_from_rig(
    path: str | Path | None = None,
) -> tuple[LocalizationConfig, GeodeticOrigin]:
    """The estimator's GNSS antenna lever arm and fix latency from a rig file's `[gnss]` (default
    `configs/rig_nuscenes.toml`, the generator's), and the geodetic origin of its map."""
    g = load_rig(path).gnss
    config = LocalizationConfig(antenna_in_ego=g.translation, gnss_time_offset_s=g.time_offset_s)
    return config, g.map_origin


def localization_from_frames(
    frames: Mapping[str, Transform], config: LocalizationConfig | None = None
) -> LocalizationConfig | None:
    """`config` (default `LocalizationConfig()`) with the antenna lever arm and the IMU -> ego
    extrinsic of a log's non-sensor frames (`Rig.frames`: `gnss`, the antenna -> ego, and
    `imu`); None when the log has neither. The fix latency is not a transform: it stays
    `config`'s (configured, `--rig`)."""
    gnss, imu = frames.get(GNSS_CHANNEL), frames.get(IMU_CHANNEL)
    if gnss is None and imu is None:
        return None
    config = config or LocalizationConfig()
    if gnss is not None:
        config = replace(config, antenna_in_ego=tuple(float(v) for v in gnss.translation))
    if imu is not None:
        config = replace(config, imu_to_ego=Transform(imu.matrix, src="imu", dst="ego"))
    return config
