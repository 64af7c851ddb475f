"""Where a log keeps what: the topic map (topics and tf frames of each sensor) and the rig
fallback (`configs/rig_nuscenes.toml` format) for sensors a log carries no calibration for."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from calibration import Transform
from fusion.config import CONFIG_DIR, load_dataclass
from fusion.data.rig_file import RigSpec, load_rig
from fusion.errors import ConfigError, DataError
from fusion.localization.estimator import LocalizationConfig
from fusion.sources.base import Rig, SensorCalibration

DEFAULT_TOPICS = CONFIG_DIR / "topics_nuscenes.toml"
KEYFRAMES_TOPIC = "/nuscenes/keyframes"  # written by `fusion convert`: keyframe marks, JSON

# Channel names of the non-sensor streams a source yields.
POSE_CHANNEL = "pose"  # ego poses: tf map -> base_link, or a dataroot's ego_pose records
ODOM_CHANNEL = "odom"  # CAN bus pose (50 Hz): /odom
IMU_CHANNEL = "imu"  # CAN bus ms_imu (100 Hz): /imu
GNSS_CHANNEL = "gnss"  # GNSS fixes (NavSatFix / foxglove.LocationFix): /gps
SPEED_CHANNEL = "speed"  # forward speed (wheel speeds; TwistStamped): /vehicle/twist


@dataclass(frozen=True)
class SensorTopic:
    """One sensor of a log. `info`: the camera_info topic of a camera ("" for none)."""

    channel: str
    kind: Literal["lidar", "camera", "radar"]
    topic: str
    frame: str
    info: str = ""


@dataclass(frozen=True)
class TopicMap:
    """The topics and frames of a log; "" marks a stream the log does not have."""

    map_frame: str
    ego_frame: str
    tf: str
    tf_static: str
    odom: str
    imu: str
    sensors: tuple[SensorTopic, ...]
    gnss: str = ""  # GNSS fixes; a map written before GNSS was read may leave it out
    speed: str = ""  # forward speed of the vehicle
    # the frames of the GNSS antenna and of the IMU: their static transforms from the ego frame
    # give the pose estimator's lever arm and IMU extrinsic (Rig.frames)
    gnss_frame: str = "gps"
    imu_frame: str = "imu"
    path: str = ""  # the file it came from, for errors
    strict: bool = False  # every named topic must be in the log (a user's map)

    def by_topic(self) -> dict[str, SensorTopic]:
        return {s.topic: s for s in self.sensors}

    def rig_frames(self) -> dict[str, str]:
        """Frame id -> name in `Rig.frames` of the frames that are not sensors."""
        named = ((self.gnss_frame, GNSS_CHANNEL), (self.imu_frame, IMU_CHANNEL))
        return {frame: name for frame, name in named if frame}

    def channel_counts(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Messages per channel (`Source.info()["channels"]`) from messages per topic: each
        sensor by its channel, and the tf, odom, imu, gnss and speed streams the log has."""
        channels = {s.channel: counts[s.topic] for s in self.sensors if s.topic in counts}
        for name, topic in (
            ("tf", self.tf),
            (ODOM_CHANNEL, self.odom),
            (IMU_CHANNEL, self.imu),
            (GNSS_CHANNEL, self.gnss),
            (SPEED_CHANNEL, self.speed),
        ):
            if topic and topic in counts:
                channels[name] = counts[topic]
        return channels

    def named_topics(self) -> list[str]:
        streams = [self.tf, self.tf_static, self.odom, self.imu, self.gnss, self.speed]
        return [t for t in [*streams, *(s.topic for s in self.sensors)] if t] + [
            s.info for s in self.sensors if s.info
        ]

    def check_against(self, log_topics: Collection[str], log_path: str | Path) -> None:
        """A user's map must name only topics the log has; every log needs its LIDAR."""
        if self.strict:
            absent = [t for t in self.named_topics() if t not in log_topics]
            if absent:
                raise DataError(
                    f"topic map names topics absent from {log_path}: {', '.join(absent)}",
                    self.path,
                )
        lidars = [s for s in self.sensors if s.kind == "lidar" and s.topic in log_topics]
        if not lidars:
            wanted = ", ".join(s.topic for s in self.sensors if s.kind == "lidar") or "none"
            raise DataError(f"log has no LIDAR topic (topic map wants: {wanted})", log_path)


def load_topic_map(path: str | Path | None = None) -> TopicMap:
    """A topic-map TOML (default `configs/topics_nuscenes.toml`), loaded strictly: unknown
    keys, wrong types and duplicate channels raise DataError naming the file. A map given by
    path is strict against the log (see `TopicMap.check_against`)."""
    file = Path(path) if path is not None else DEFAULT_TOPICS
    try:
        tm = load_dataclass(TopicMap, file)
    except ConfigError as err:
        raise DataError(err.reason, file) from err
    if tm.path or tm.strict:
        raise DataError("keys 'path' and 'strict' are not topic-map keys", file)
    channels = [s.channel for s in tm.sensors]
    if len(set(channels)) != len(channels):
        raise DataError("topic map names a channel twice", file)
    topics = [s.topic for s in tm.sensors]
    if len(set(topics)) != len(topics) or "" in topics:
        raise DataError("every sensor needs its own non-empty topic", file)
    return TopicMap(**{**tm.__dict__, "path": str(file), "strict": path is not None})


def rig_from_file(path: str | Path) -> Rig:
    """A rig TOML (`configs/rig_nuscenes.toml` format, as `fusion generate --rig` reads it) ->
    Rig: each sensor's mounting, and each camera's intrinsics at the file's image size."""
    try:
        spec = load_rig(path)
    except ConfigError as err:
        raise DataError(err.reason, path) from err
    sensors = {}
    for s in (spec.lidar, *spec.radars):
        sensors[s.channel] = SensorCalibration(s.channel, s.to_ego)
    for c in spec.cameras:
        sensors[c.channel] = SensorCalibration(c.channel, c.to_ego, c.camera())
    return Rig(sensors, rig_file_frames(spec), f"rig {path} [gnss]")


def rig_file_frames(spec: RigSpec) -> dict[str, Transform]:
    """A rig file's non-sensor frames: the GNSS antenna (`[gnss]` translation) and the IMU,
    which the rig puts at the ego origin (the CAN bus `ms_imu` is in the ego frame)."""
    antenna = Transform.from_translation_quaternion(
        spec.gnss.translation, (1.0, 0.0, 0.0, 0.0), src=GNSS_CHANNEL, dst="ego"
    )
    return {GNSS_CHANNEL: antenna, IMU_CHANNEL: Transform(np.eye(4), src=IMU_CHANNEL, dst="ego")}


def complete_rig(
    channels: Collection[str],
    extrinsics: Mapping[str, Transform],
    cameras: Mapping[str, object],
    camera_channels: Collection[str],
    fallback: Rig | None,
    log_path: str | Path,
    frames: Mapping[str, Transform] | None = None,
    frames_origin: str = "",
) -> Rig:
    """The log's own calibration, a missing piece taken from `fallback` (the `--rig` file):
    a sensor with neither raises DataError naming the sensor. `frames`: the log's non-sensor
    frames (the `--rig` file overrides them where it is used: `fusion replay --rig`)."""
    sensors = {}
    for ch in channels:
        ext = extrinsics.get(ch)
        cam = cameras.get(ch) if ch in camera_channels else None
        if ext is None or (ch in camera_channels and cam is None):
            if fallback is None or ch not in fallback:
                what = "extrinsics (no tf)" if ext is None else "intrinsics (no camera_info)"
                raise DataError(
                    f"sensor {ch} has no {what} in the log and no --rig file gives them", log_path
                )
            ext = ext if ext is not None else fallback[ch].sensor_to_ego
            if ch in camera_channels and cam is None:
                cam = fallback[ch].camera
                if cam is None:
                    raise DataError(f"the rig file has no camera model for {ch}", log_path)
        sensors[ch] = SensorCalibration(ch, ext, cam)  # type: ignore[arg-type]
    return Rig(sensors, dict(frames or {}), frames_origin if frames else "")


def keyframes_json(marks: Mapping[str, list[tuple[int, str]]]) -> bytes:
    """The keyframe marks `fusion convert` writes on KEYFRAMES_TOPIC, once at the log's start:
    `{"keyframes": {channel: [[timestamp_us, sample_token], ...]}}`."""
    import json

    return json.dumps(
        {"keyframes": {ch: [list(m) for m in ms] for ch, ms in marks.items()}}
    ).encode()


def parse_keyframes(raw: bytes, origin: str | Path) -> dict[tuple[str, int], str]:
    """KEYFRAMES_TOPIC bytes -> {(channel, timestamp_us): sample_token}."""
    import json

    try:
        table = json.loads(raw)["keyframes"]
        return {(ch, int(t)): str(tok) for ch, ms in table.items() for t, tok in ms}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"malformed keyframe marks on {KEYFRAMES_TOPIC}: {exc!r}", origin) from exc


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
