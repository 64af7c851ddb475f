"""A nuScenes dataroot scene as a log: every sample_data (keyframes and sweeps) at its native
rate, the ego poses, and the CAN bus pose and IMU where the dataroot has `can_bus/`.

Streams (channels):
- sensors (`LIDAR_TOP`, `CAM_*`, `RADAR_*`): raw = the file's bytes, read when the message is
  reached; `is_keyframe` and `sample_token` set on keyframes.
- `pose`: the `ego_pose` record of every sample_data of the scene (one per distinct time). These
  are the poses the offline reader uses (`NuScenesReader.sensor_pose`), each at its sensor's own
  timestamp, so a replay that interpolates this stream at a sensor time gets exactly the offline
  pose, and replay frames equal offline frames. The CAN bus pose is a different, independently
  sampled estimate (synthetic data adds GPS noise to it): interpolating it would move every
  sensor by centimetres against the offline frame.
- `odom`: the CAN bus `pose` messages (50 Hz), where present: the GPS/IMU stream a car has.
- `imu`: the CAN bus `ms_imu` messages (100 Hz), where present.
- `gnss`: GNSS fixes (`can_bus/<scene>_gnss.json`, written by `fusion generate`), where present.
- `speed`: the rear wheels' speed (`zoe_veh_info`, 100 Hz), else `vehicle_monitor` (2 Hz),
  where the scene has GNSS fixes (the estimator's inputs travel together).

There is no separate log time in a dataroot: `log_time_us` is the sensor time.

A sweep whose file is absent (nuScenes' keyframes-only download: the tables link every sweep,
only keyframe files exist) yields no message and is counted in `info()["absent_sweeps"]`; a
missing keyframe file is an error when its message is reached, as any unreadable file.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibration import Transform
from fusion.data.canbus import load_scene_inputs
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.data.rig_file import DEFAULT_RIG, load_rig
from fusion.data.sensor_io import resolve_inside
from fusion.errors import DataError
from fusion.sources.base import LogMessage, MessageKind, Rig, SensorCalibration, SourceKind
from fusion.sources.decoders import (
    decode_gnss_record,
    decode_imu_record,
    decode_jpeg_image,
    decode_nuscenes_lidar,
    decode_nuscenes_radar,
    decode_pose_record,
    decode_speed_record,
    gnss_record,
    imu_record,
    pose_record,
    speed_record,
)
from fusion.sources.layout import (
    GNSS_CHANNEL,
    IMU_CHANNEL,
    ODOM_CHANNEL,
    POSE_CHANNEL,
    SPEED_CHANNEL,
    rig_file_frames,
)

_DECODERS = {
    "lidar": decode_nuscenes_lidar,
    "radar": decode_nuscenes_radar,
    "camera": decode_jpeg_image,
}
# At equal times, poses come before the sensor data they locate.
_RANK = {"pose": 0, "gnss": 0, "speed": 0, "imu": 1, "lidar": 2, "radar": 2, "camera": 2}
_RECORD_DECODERS = {
    "pose": decode_pose_record,
    "imu": decode_imu_record,
    "gnss": decode_gnss_record,
    "speed": decode_speed_record,
}


@dataclass(frozen=True)
class _Entry:
    timestamp_us: int
    rank: int
    seq: int
    channel: str
    kind: MessageKind
    filename: str = ""  # sensor file, relative to the dataroot
    record: bytes = b""  # pose / imu record
    origin: str = ""
    is_keyframe: bool = False
    sample_token: str | None = None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError("file is missing", path) from exc
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path) from exc


class DatarootSource:
    """One scene of a nuScenes dataroot (real or synthetic), read through the devkit."""

    kind: SourceKind = "dataroot"

    def __init__(self, dataroot: str | Path, version: str, scene: str) -> None:
        self.path = Path(dataroot)
        self.version = version
        self.scene = scene
        self.reader = NuScenesReader(dataroot, version, ReaderOptions(load_images=False))
        if scene not in self.reader.scene_names:
            known = ", ".join(self.reader.scene_names[:10])
            raise DataError(f"no scene {scene!r} in {version} (scenes: {known})", self.path)
        nusc = self.reader.nusc
        self._sensors: list[_Entry] = []
        self._poses: dict[int, _Entry] = {}
        # checked paths by filename: resolving one costs ~0.25 ms, a third of reading a scan;
        # a looped replay or the latency benchmark reads each file many times
        self._paths: dict[str, Path] = {}
        self.absent_sweeps: dict[str, int] = {}  # channel -> sweep files not on disk
        ego_origin = str(self.path / version / "ego_pose.json")
        for i, m in enumerate(self.reader.scene_sample_data(scene)):
            sd = nusc.get("sample_data", m.token)
            kind = sd["sensor_modality"]
            if kind not in _DECODERS:
                continue
            if not sd["is_key_frame"] and self._absent(sd["filename"]):
                self.absent_sweeps[m.channel] = self.absent_sweeps.get(m.channel, 0) + 1
                continue
            self._sensors.append(
                _Entry(
                    m.timestamp_us,
                    _RANK[kind],
                    i,
                    m.channel,
                    kind,
                    filename=sd["filename"],
                    is_keyframe=bool(sd["is_key_frame"]),
                    sample_token=sd["sample_token"] if sd["is_key_frame"] else None,
                )
            )
            ep = nusc.get("ego_pose", sd["ego_pose_token"])
            t = int(ep["timestamp"])
            if t not in self._poses:
                rec = pose_record(ep["translation"], ep["rotation"])
                self._poses[t] = _Entry(
                    t, 0, len(self._poses), POSE_CHANNEL, "pose", record=rec, origin=ego_origin
                )
        if not any(e.kind == "lidar" for e in self._sensors):
            raise DataError(f"scene {scene} has no LIDAR sample_data", self.path)
        self._can: list[_Entry] = []
        can = self.reader.can_bus(scene)
        if can is not None:
            odom_origin = str(self.path / "can_bus" / f"{scene}_pose.json")
            ps = can.pose
            for k, t in enumerate(ps.timestamps_us):
                rec = pose_record(ps.translations[k], ps.rotations[k])
                self._can.append(
                    _Entry(int(t), 0, k, ODOM_CHANNEL, "pose", record=rec, origin=odom_origin)
                )
            imu_origin = str(self.path / "can_bus" / f"{scene}_ms_imu.json")
            for k, t in enumerate(can.imu_timestamps_us):
                rec = imu_record(can.imu_rotation_rate[k], can.imu_linear_accel[k])
                self._can.append(
                    _Entry(int(t), 1, k, IMU_CHANNEL, "imu", record=rec, origin=imu_origin)
                )
        self._can += _gnss_entries(self.path, scene)

    def _absent(self, filename: object) -> bool:
        """The file is not on disk (a keyframes-only download's sweep). A name that does not
        resolve inside the dataroot is not "absent": its message raises when reached."""
        try:
            path = resolve_inside(self.path, filename)
        except DataError:
            return False
        if path.exists():
            self._paths[filename] = path  # type: ignore[index]  # resolved once, as in messages()
            return False
        return True

    # -- the Source protocol -----------------------------------------------------------------
    def rig(self) -> Rig:
        """Calibration from `calibrated_sensor` (and camera_intrinsic, width, height) of each
        sensor's first keyframe in the scene. A dataroot has no record of the GNSS antenna or
        the IMU: when the scene has their CAN bus files, `frames` are the generator's rig file's
        (`configs/rig_nuscenes.toml`: the antenna of `[gnss]`, the IMU at the ego origin)."""
        nusc = self.reader.nusc
        scene = next(s for s in nusc.scene if s["name"] == self.scene)
        first = nusc.get("sample", scene["first_sample_token"])
        sensors = {}
        for channel, sd_token in first["data"].items():
            sd = nusc.get("sample_data", sd_token)
            if sd["sensor_modality"] not in _DECODERS:
                continue
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            to_ego = Transform.from_translation_quaternion(
                cs["translation"], cs["rotation"], src=channel, dst="ego"
            )
            cam = self.reader.camera_model(sd_token) if sd["sensor_modality"] == "camera" else None
            sensors[channel] = SensorCalibration(channel, to_ego, cam)
        can = self.path / "can_bus"
        have = {
            name
            for name in (GNSS_CHANNEL, IMU_CHANNEL)
            if (can / f"{self.scene}_{'ms_imu' if name == IMU_CHANNEL else name}.json").is_file()
        }
        if not have:
            return Rig(sensors)
        frames = {k: v for k, v in rig_file_frames(load_rig()).items() if k in have}
        return Rig(sensors, frames, f"rig {DEFAULT_RIG} [gnss]")

    def messages(self) -> Iterator[LogMessage]:
        """Every message in time order; a sensor file is read when its message is reached."""
        key = lambda e: (e.timestamp_us, e.rank, e.channel, e.seq)  # noqa: E731
        streams = (self._sensors, sorted(self._poses.values(), key=key), sorted(self._can, key=key))
        for e in heapq.merge(*streams, key=key):
            if e.filename:
                path = self._paths.get(e.filename)
                if path is None:
                    path = self._paths[e.filename] = resolve_inside(self.path, e.filename)
                raw, origin = _read(path), str(path)
                decoder = _DECODERS[e.kind]
            else:
                raw, origin = e.record, e.origin
                decoder = _RECORD_DECODERS[e.kind]
            yield LogMessage(
                e.channel,
                e.kind,
                e.timestamp_us,
                e.timestamp_us,
                raw,
                decoder,
                origin,
                e.is_keyframe,
                e.sample_token,
            )

    def keyframes(self) -> dict[str, list[tuple[int, str]]]:
        """Keyframe marks per channel: [(timestamp_us, sample_token), ...] in time order."""
        marks: dict[str, list[tuple[int, str]]] = {}
        for e in self._sensors:
            if e.is_keyframe and e.sample_token is not None:
                marks.setdefault(e.channel, []).append((e.timestamp_us, e.sample_token))
        return marks

    def info(self) -> Mapping[str, Any]:
        entries = [*self._sensors, *self._poses.values(), *self._can]
        times = [e.timestamp_us for e in entries]
        start, end = min(times), max(times)
        return {
            "path": str(self.path),
            "kind": self.kind,
            "scene": self.scene,
            "channels": dict(sorted(Counter(e.channel for e in entries).items())),
            "keyframes": sum(e.is_keyframe for e in self._sensors if e.kind == "lidar"),
            # sweeps in the tables whose files are absent (keyframes-only layout): no message
            "absent_sweeps": dict(sorted(self.absent_sweeps.items())),
            "log_delay_us": 0,  # logged at sensor time (`StreamOptions.log_delay_us`)
            "start_us": start,
            "end_us": end,
            "duration_s": (end - start) * 1e-6,
        }


def _gnss_entries(root: Path, scene: str) -> list[_Entry]:
    """The scene's GNSS fixes and wheel speeds from `can_bus/`, or none."""

    inputs = load_scene_inputs(root, scene)
    if inputs is None:
        return []
    _, speed, gnss = inputs
    can = root / "can_bus"
    entries = []
    for k, t in enumerate(gnss.timestamps_us):
        rec = gnss_record(
            gnss.lat_deg[k], gnss.lon_deg[k], gnss.alt_m[k], gnss.covariance[k],
            int(gnss.covariance_type[k]), int(gnss.status[k]),
        )  # fmt: skip
        origin = str(can / f"{scene}_gnss.json")
        entries.append(_Entry(int(t), 0, k, GNSS_CHANNEL, "gnss", record=rec, origin=origin))
    origin = str(can / f"{scene}_zoe_veh_info.json")
    for k, t in enumerate(speed.timestamps_us):
        rec = speed_record(float(speed.speed[k]))
        entries.append(_Entry(int(t), 0, k, SPEED_CHANNEL, "speed", record=rec, origin=origin))
    return entries
