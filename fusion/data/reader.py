"""The nuScenes reader: any dataroot (real or synthetic), read through the official devkit.

`NuScenesReader(dataroot, version).frame(sample_token)` returns a `Frame` synchronized to the
LIDAR_TOP keyframe: LIDAR sweeps and radar sweeps motion-compensated into the LIDAR_TOP frame at
the reference time, six cameras with their own timestamps and ego poses, GT boxes.

Every record the reader uses is checked before use (README "Bad input"): a missing field, a
dangling token, a zero quaternion, a NaN translation, a negative timestamp, singular intrinsics or
a filename that is not a string is a `DataError` naming the table file. Duplicate tokens, dangling
foreign keys and prev/next cycles of any length are checked once, over whole tables, when they
load (`fusion.data.tables.table_problems`); every prev/next chain is also walked with a visited set
(a loop is an error, never a hang); a sweep must be strictly older than the one after it and at most
`MAX_SWEEP_AGE_US` older than its keyframe; a keyframe farther from the reference time than
the config's `[sync]` tolerance is missing in the frame and counted in `out_of_sync`, not fused.
A sweep whose file is absent (nuScenes' keyframes-only download: the tables link every sweep,
only keyframe files exist) is left out and counted (`LidarData.absent_dt`,
`Frame.absent_sweeps`): the frame fuses the sweeps that exist. A missing keyframe file, or a
sweep file that exists but does not parse, is an error as before.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from calibration import PinholeCamera, Transform, quaternion_to_matrix, yaw_from_matrix
from calibration.geodesy import GeodeticOrigin
from fusion.config import (
    CAMERA_CHANNELS,
    LIDAR_CHANNEL,
    RADAR_CHANNELS,
    PipelineConfig,
    SyncConfig,
    load_config,
)
from fusion.data.canbus import CanBus, has_scene_inputs, load_can_bus, scene_poses
from fusion.data.rig_file import localization_from_rig
from fusion.data.sensor_io import (
    RadarFilter,
    jpeg_reduction,
    load_image,
    load_lidar_bin,
    load_radar_pcd,
    read_json,
    reduced_camera,
    resolve_inside,
)
from fusion.data.tables import TABLES, first_table_error, table_problems
from fusion.errors import DataError
from fusion.frame import Boxes, CameraData, EgoMotion, Frame, LidarData, RadarData, SensorPose
from fusion.localization.estimator import POSE_SOURCE, EstimatedPoses, LocalizationConfig
from fusion.localization.pose_source import LOG, PoseChoice, choose_pose_source
from fusion.motion.poses import NoEgoPose, PoseStream, pose_at, pose_stream_from_records
from fusion.motion.sweeps import lidar_sweeps, radar_sweeps

# the key of a broken ego motion source (CAN bus or ego_pose table) in `Frame.missing`
EGO_MOTION = "EGO_MOTION"
# The oldest sweep fused with a keyframe: 10 LIDAR sweeps at 20 Hz span 0.45 s, 6 radar sweeps at
# 13 Hz 0.4 s. A sweep older than this is a broken chain or a bad timestamp, not motion.
MAX_SWEEP_AGE_US = 1_000_000


class _OutOfSync(Exception):
    """A keyframe beyond the sync tolerance: missing in the frame, never fused."""


def sync_warning(out_of_sync: Mapping[str, int]) -> str:
    """The one line `inspect` and `eval` print counting the keyframes left out of frames for
    being beyond the `[sync]` tolerance (`NuScenesReader.out_of_sync`: channel -> keyframes)."""
    n = sum(out_of_sync.values())
    per = ", ".join(f"{ch} {k}" for ch, k in sorted(out_of_sync.items()))
    return f"WARNING: {n} keyframe(s) beyond the [sync] tolerance, left out of their frames: {per}"


def load_splits(path: Path) -> dict[str, list[str]]:
    """`<version>/splits.json`: split name -> scene names, or a DataError naming the file."""
    data = read_json(path, "splits file")
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in data.values()
    ):
        raise DataError("splits file must map each split name to a list of scene names", path)
    return {k: list(v) for k, v in data.items()}


class SampleDataRef(NamedTuple):
    """One sample_data of a scene: its time (us), sensor channel and token."""

    timestamp_us: int
    channel: str
    token: str


@dataclass(frozen=True)
class ReaderOptions:
    """What a frame holds. Defaults follow the pipeline config."""

    lidar_sweeps: int = 10
    radar_sweeps: int = 6
    radar_filter: RadarFilter = RadarFilter()
    load_images: bool = True
    tolerant: bool = False  # mark a broken sensor missing instead of raising
    # how far (us) each keyframe may be from the reference time; None: the reader's config's
    sync: SyncConfig | None = None
    # "reduced": JPEGs decoded at reduced DCT scale for a network input of `network_hw` (H, W),
    # the camera model scaled with them (fusion.data.sensor_io.jpeg_reduction, reduced_camera)
    image_decode: Literal["full", "reduced"] = "full"
    network_hw: tuple[int, int] | None = None
    # ego poses (`fusion.localization.pose_source`): the `ego_pose` table (`log`), or estimated
    # causally from each scene's CAN bus IMU, wheel speed and GNSS (`gnss-imu`), or the first
    # when the dataroot has ego_pose records (`auto`). The estimator's calibration and the
    # geodetic origin of the dataroot's global frame: given, else the default rig's `[gnss]`
    poses: PoseChoice = "auto"
    localization: LocalizationConfig | None = None
    map_origin: GeodeticOrigin | None = None

    @classmethod
    def from_config(cls, cfg: PipelineConfig, **overrides: object) -> ReaderOptions:
        base = cls(
            lidar_sweeps=cfg.point_cloud.sweeps,
            radar_sweeps=cfg.radar.sweeps,
            radar_filter=RadarFilter.preset(cfg.radar.filter),
            sync=cfg.sync,
            network_hw=cfg.camera.image_hw,
        )
        return cls(**{**base.__dict__, **overrides})


class NuScenesReader:
    """Reads scenes, samples and frames of a nuScenes dataroot through the devkit."""

    def __init__(
        self,
        dataroot: str | Path,
        version: str,
        options: ReaderOptions | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        self.dataroot = Path(dataroot)
        self.version = version
        config = config or load_config("tiny")
        if options is None:
            options = ReaderOptions.from_config(config)
        self.options = options
        self.sync = options.sync or config.sync
        self.skipped: dict[str, int] = {}  # channel -> sensors marked missing (tolerant mode)
        # channel -> keyframes left out of a frame for being beyond the sync tolerance
        self.out_of_sync: dict[str, int] = {}
        # channel -> sweeps left out of frames because their file is absent (keyframes-only
        # layout); each frame's own count is `Frame.absent_sweeps`
        self.absent_sweeps: dict[str, int] = {}
        self._check_tables()
        from nuscenes.nuscenes import NuScenes

        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet):
                self.nusc = NuScenes(version=version, dataroot=str(self.dataroot), verbose=False)
        except Exception as exc:  # noqa: BLE001 - the devkit's KeyError, TypeError, ... on bad tables
            raise self._table_error(exc) from None
        self._check_keys()
        self._can_bus: dict[str, CanBus | DataError | None] = {}
        # the one pose source of the reader: `log` (ego_pose) or `gnss-imu` (the estimator)
        self.pose_source = self._choose_pose_source()
        # scene -> the estimator's poses (gnss-imu), run once per scene when first needed
        self.estimates: dict[str, EstimatedPoses | DataError | None] = {}
        # channel -> sample_data left out of frames for want of an ego pose (gnss-imu: before
        # the estimator's start); a LIDAR_TOP keyframe without one has no frame (NoEgoPose)
        self.no_pose: dict[str, int] = {}

    def _table_error(self, exc: Exception) -> DataError:
        """The devkit failed on a table: name the first bad table file `fusion validate` finds
        (a missing field, a dangling or duplicate token, bad JSON), else the version folder."""
        found = first_table_error(self.dataroot / self.version)
        if found is not None:
            path, why = found
            return DataError(f"{why} (the devkit cannot load it: {exc!r})", path)
        return DataError(
            f"the devkit cannot load {self.version}: {exc!r}", self.dataroot / self.version
        )

    def _check_tables(self) -> None:
        if not self.dataroot.is_dir():
            raise DataError("dataroot does not exist or is not a directory", self.dataroot)
        vdir = self.dataroot / self.version
        if not vdir.is_dir():
            raise DataError(f"version folder {self.version!r} is missing", vdir)
        for table in TABLES:
            path = vdir / f"{table}.json"
            if not path.is_file():
                raise DataError(f"table {table!r} is missing", path)

    def _check_keys(self) -> None:
        """Duplicate tokens, dangling foreign keys and prev/next cycles of every table, once,
        after the devkit loaded them: the first one is a DataError naming the table file."""
        tables = {t: getattr(self.nusc, t) for t in TABLES}
        for problem in table_problems(tables):
            raise DataError(problem.message, self._table_path(problem.table))

    # -- checked record access ---------------------------------------------------------------
    def _table_path(self, table: str) -> Path:
        return self.dataroot / self.version / f"{table}.json"

    def _get(self, table: str, token: object, referrer: str = "") -> dict:
        """The record, or a DataError naming the table file (a dangling or non-string token)."""
        if not isinstance(token, str):
            raise DataError(
                f"{referrer or table} token must be a string, got {token!r}",
                self._table_path(table),
            )
        try:
            return self.nusc.get(table, token)
        except KeyError:
            where = f" (referenced by {referrer})" if referrer else ""
            raise DataError(
                f"no {table} record {token!r}{where}", self._table_path(table)
            ) from None

    def _field(self, table: str, rec: dict, name: str) -> object:
        try:
            return rec[name]
        except KeyError:
            raise DataError(
                f"{table} record {rec.get('token', '?')!r} has no {name!r}", self._table_path(table)
            ) from None

    def _numbers(self, table: str, rec: dict, name: str, n: int) -> np.ndarray:
        """`rec[name]` as n finite float64s, else a DataError naming the table."""
        val = self._field(table, rec, name)
        try:
            arr = np.asarray(val, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.shape != (n,) or not np.isfinite(arr).all():
            raise DataError(
                f"{table} record {rec.get('token', '?')!r}: {name} must be {n} finite numbers, "
                f"got {val!r}",
                self._table_path(table),
            )
        return arr

    def _quaternion(self, table: str, rec: dict, name: str = "rotation") -> np.ndarray:
        """A finite, non-zero (w, x, y, z); a non-unit one is normalized (harmless)."""
        q = self._numbers(table, rec, name, 4)
        norm = float(np.linalg.norm(q))
        if norm < 1e-6:
            raise DataError(
                f"{table} record {rec.get('token', '?')!r}: {name} is a zero quaternion",
                self._table_path(table),
            )
        return q / norm

    def _timestamp(self, table: str, rec: dict) -> int:
        ts = self._field(table, rec, "timestamp")
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            raise DataError(
                f"{table} record {rec.get('token', '?')!r}: timestamp must be a number of us, "
                f"got {ts!r}",
                self._table_path(table),
            )
        if ts < 0:  # before 1970: a corrupt stamp, which would pass every ordering check
            raise DataError(
                f"{table} record {rec.get('token', '?')!r}: timestamp {ts} us is negative",
                self._table_path(table),
            )
        return int(ts)

    def _walk(
        self, table: str, token: str, direction: str, limit: int | None = None
    ) -> Iterator[dict]:
        """Records along a prev/next chain from `token` (included), at most `limit`: a token seen
        twice is a loop (DataError), so a self-referencing chain never hangs."""
        seen: set[str] = set()
        # a chain longer than its table has a loop: one more step than records finds it
        bound = len(getattr(self.nusc, table)) + 1 if limit is None else limit
        while token and len(seen) < bound:
            if token in seen:
                raise DataError(
                    f"{table} {direction} chain loops back to {token!r}", self._table_path(table)
                )
            seen.add(token)
            rec = self._get(table, token, f"a {direction} link")
            yield rec
            token = self._field(table, rec, direction)  # type: ignore[assignment]

    # -- scenes and samples ------------------------------------------------------------------
    @property
    def scene_names(self) -> list[str]:
        return [s["name"] for s in self.nusc.scene]

    def split_scenes(self, split: str) -> list[str]:
        """Scene names of a split: `<version>/splits.json` first, then the devkit's splits."""
        custom = self.dataroot / self.version / "splits.json"
        splits = load_splits(custom) if custom.is_file() else {}
        if split in splits:
            return splits[split]
        from nuscenes.utils.splits import create_splits_scenes

        official = create_splits_scenes(verbose=False)
        if split not in official:
            known = sorted(official) + sorted(splits)
            raise DataError(f"unknown split {split!r} (known: {', '.join(known)})")
        return official[split]

    def sample_tokens(self, split: str | None = None, scene: str | None = None) -> list[str]:
        """Sample tokens in scene order, optionally restricted to a split or a scene."""
        wanted = None
        if split is not None:
            wanted = set(self.split_scenes(split))
        if scene is not None:
            wanted = {scene} if wanted is None else wanted & {scene}
        tokens = []
        for s in self.nusc.scene:
            if wanted is not None and s["name"] not in wanted:
                continue
            first = self._field("scene", s, "first_sample_token")
            tokens += [r["token"] for r in self._walk("sample", first, "next")]  # type: ignore[arg-type]
        return tokens

    # -- calibration and poses ---------------------------------------------------------------
    def _channel(self, sd: dict) -> tuple[dict, str]:
        """(calibrated_sensor record, channel) of a sample_data record."""
        cs = self._get(
            "calibrated_sensor",
            self._field("sample_data", sd, "calibrated_sensor_token"),
            f"sample_data {sd['token']}",
        )
        sensor = self._get("sensor", self._field("calibrated_sensor", cs, "sensor_token"))
        channel = self._field("sensor", sensor, "channel")
        if not isinstance(channel, str):
            raise DataError(
                f"sensor channel must be a string, got {channel!r}", self._table_path("sensor")
            )
        return cs, channel

    def sensor_pose(self, sample_data_token: str) -> SensorPose:
        """The sensor's calibration and the ego pose at its time, from the reader's pose source;
        `NoEgoPose` when the estimator has no pose at that time."""
        sd = self._get("sample_data", sample_data_token)
        cs, channel = self._channel(sd)
        timestamp_us = self._timestamp("sample_data", sd)
        if self.pose_source == POSE_SOURCE:
            ego = self._estimated_pose(sd, timestamp_us)
        else:
            ep = self._get(
                "ego_pose",
                self._field("sample_data", sd, "ego_pose_token"),
                f"sample_data {sd['token']}",
            )
            ego = Transform.from_translation_quaternion(
                self._numbers("ego_pose", ep, "translation", 3),
                self._quaternion("ego_pose", ep),
                src="ego",
                dst="global",
            )
        return SensorPose(
            channel=channel,
            timestamp_us=timestamp_us,
            sensor_to_ego=Transform.from_translation_quaternion(
                self._numbers("calibrated_sensor", cs, "translation", 3),
                self._quaternion("calibrated_sensor", cs),
                src=channel,
                dst="ego",
            ),
            ego_to_global=ego,
        )

    def _choose_pose_source(self) -> str:
        """`choose_pose_source` for this dataroot: its localization is the ego_pose table, the
        estimator needs a scene with CAN bus IMU and GNSS files."""
        o = self.options
        can_estimate = o.poses != LOG and any(
            has_scene_inputs(self.dataroot, s["name"]) for s in self.nusc.scene
        )
        source = choose_pose_source(
            o.poses,
            bool(self.nusc.ego_pose),
            can_estimate,
            log_names=f"{self._table_path('ego_pose')} has no records",
            estimate_needs="can_bus/<scene>_ms_imu.json and <scene>_gnss.json "
            "(fusion generate --gnss std|rtk)",
        )
        if source == POSE_SOURCE and (o.localization is None or o.map_origin is None):
            config, origin = localization_from_rig()
            self.options = replace(
                o, localization=o.localization or config, map_origin=o.map_origin or origin
            )
        return source or LOG

    def scene_estimate(self, scene_name: str) -> EstimatedPoses | None:
        """The estimator's poses of a scene in the global frame (run once; None: the scene has
        no IMU or GNSS file); a malformed input file raises its DataError, read once."""
        if scene_name not in self.estimates:
            try:
                self.estimates[scene_name] = scene_poses(
                    self.dataroot, scene_name, self.options.localization, self.options.map_origin
                )
            except DataError as err:
                self.estimates[scene_name] = err
        got = self.estimates[scene_name]
        if isinstance(got, DataError):
            raise got
        return got

    def _estimated_pose(self, sd: dict, timestamp_us: int) -> Transform:
        sample = self._get("sample", self._field("sample_data", sd, "sample_token"), "sample_data")
        scene = self._get("scene", self._field("sample", sample, "scene_token"), "a sample")
        est = self.scene_estimate(scene["name"])
        pose = None
        if est is not None and len(est):
            pose = pose_at(est.timestamps_us, est.translations, est.rotations, timestamp_us, 0)
        if pose is None:
            start = (
                "never started"
                if est is None or est.start_us is None
                else (f"poses from {int(est.timestamps_us[0])} us")
            )
            raise NoEgoPose(
                f"no estimated ego pose at {timestamp_us} us (scene {scene['name']}: the "
                f"estimator {start})"
            )
        return pose

    def _left_out(self, channel: str) -> None:
        self.no_pose[channel] = self.no_pose.get(channel, 0) + 1

    @cached_property
    def ego_poses(self) -> PoseStream:
        """All `ego_pose` records as one stream (one log per dataroot is typical; poses of
        different logs never interleave in time)."""
        return pose_stream_from_records(self.nusc.ego_pose, origin=self._table_path("ego_pose"))

    def pose_stream(self, scene_name: str) -> PoseStream:
        """The scene's GPS/IMU pose stream: the estimator's (pose source `gnss-imu`), else the
        CAN bus `pose` messages (50 Hz) when the dataroot has them, else the `ego_pose` records."""
        if self.pose_source == POSE_SOURCE:
            est = self.scene_estimate(scene_name)
            if est is None or not len(est):
                raise NoEgoPose(f"scene {scene_name}: the pose estimator gave no pose")
            return est.pose_stream()
        can = self.can_bus(scene_name)
        return can.pose if can is not None else self.ego_poses

    def scene_sample_data(self, scene_name: str) -> list[SampleDataRef]:
        """Every sample_data of a scene (keyframes and sweeps), time-ordered: what
        `fusion.sources.DatarootSource` turns into log messages."""
        scene = next((s for s in self.nusc.scene if s["name"] == scene_name), None)
        if scene is None:
            raise DataError(f"unknown scene {scene_name!r}")
        first = self._get("sample", scene["first_sample_token"], f"scene {scene_name}")
        out = []
        for sd_token in self._sample_data_tokens(first).values():
            *_, earliest = self._walk("sample_data", sd_token, "prev")  # the first sweep
            for sd in self._walk("sample_data", earliest["token"], "next"):
                _, channel = self._channel(sd)
                out.append(SampleDataRef(self._timestamp("sample_data", sd), channel, sd["token"]))
        return sorted(out, key=lambda m: (m.timestamp_us, m.channel))

    def can_bus(self, scene_name: str) -> CanBus | None:
        """The scene's CAN bus (None when absent); a broken one raises its DataError, read once."""
        if scene_name not in self._can_bus:
            try:
                self._can_bus[scene_name] = load_can_bus(self.dataroot, scene_name)
            except DataError as err:
                self._can_bus[scene_name] = err
        got = self._can_bus[scene_name]
        if isinstance(got, DataError):
            raise got
        return got

    def camera_model(self, sample_data_token: str) -> PinholeCamera:
        sd = self._get("sample_data", sample_data_token)
        cs, _ = self._channel(sd)
        k = self._field("calibrated_sensor", cs, "camera_intrinsic")
        if not k:
            raise DataError("camera has no intrinsics", sd["filename"])
        where = self._table_path("calibrated_sensor")
        try:
            kk = np.asarray(k, dtype=np.float64)
        except (TypeError, ValueError):
            kk = np.zeros(0)
        if kk.shape != (3, 3) or not np.isfinite(kk).all():
            raise DataError(
                f"calibrated_sensor {cs['token']}: camera_intrinsic must be a finite 3x3 "
                f"matrix, got {k!r}",
                where,
            )
        w, h = self._field("sample_data", sd, "width"), self._field("sample_data", sd, "height")
        if (
            not (isinstance(w, int) and isinstance(h, int))
            or isinstance(w, bool)
            or isinstance(h, bool)
        ):
            raise DataError(
                f"sample_data {sd['token']}: width and height must be integers, got {w!r}x{h!r}",
                self._table_path("sample_data"),
            )
        try:
            return PinholeCamera(kk, w, h)
        except ValueError as exc:  # zero focal length, a zero or negative size
            raise DataError(
                f"calibrated_sensor {cs['token']}: bad camera model: {exc}", where
            ) from None

    # -- frames ------------------------------------------------------------------------------
    def _sample_data_tokens(self, sample: dict) -> dict[str, str]:
        """channel -> keyframe sample_data token (the devkit's reverse index)."""
        data = sample.get("data")
        if not isinstance(data, dict):
            raise DataError(
                f"sample {sample.get('token')!r} has no sensor data",
                self._table_path("sample_data"),
            )
        return data

    def frame(self, sample_token: str) -> Frame:
        """The synchronized frame of one sample."""
        try:
            sample = self.nusc.get("sample", sample_token)
        except (KeyError, TypeError) as exc:
            raise DataError(f"unknown sample token {sample_token!r}") from exc
        scene = self._get("scene", self._field("sample", sample, "scene_token"), "a sample")
        data = self._sample_data_tokens(sample)
        if LIDAR_CHANNEL not in data:
            raise DataError(f"sample {sample_token} has no {LIDAR_CHANNEL} keyframe")
        reference = self.sensor_pose(data[LIDAR_CHANNEL])
        # the reference time of the sync check is the sample's (the LIDAR_TOP keyframe's in
        # nuScenes): a LIDAR keyframe off its sample is itself out of sync, not the others
        sample_us = self._timestamp("sample", sample)
        missing: dict[str, str] = {}

        def in_sync(ch: str, tolerance_us: int) -> None:
            sd = self._get("sample_data", data[ch], f"sample {sample_token}")
            offset_us = self._timestamp("sample_data", sd) - sample_us
            if abs(offset_us) > tolerance_us:
                raise _OutOfSync(
                    f"out of sync: {offset_us / 1000:.1f} ms from the reference time, "
                    f"tolerance {tolerance_us / 1000:g} ms ([sync] of the config)"
                )

        def lidar() -> LidarData:
            # the LIDAR_TOP keyframe is the reference; it must be at its sample's time
            in_sync(LIDAR_CHANNEL, self.sync.lidar_tolerance_us)
            return self._lidar(data[LIDAR_CHANNEL], reference)

        lidar_data = self._guard(LIDAR_CHANNEL, missing, lidar)
        cameras = {}
        if self.options.load_images:
            for ch in CAMERA_CHANNELS:
                if ch in data:

                    def camera(ch: str = ch) -> CameraData:
                        in_sync(ch, self.sync.camera_tolerance_us)
                        return self._camera(data[ch])

                    cam = self._guard(ch, missing, camera)
                    if cam is not None:
                        cameras[ch] = cam
        radars = {}
        for ch in RADAR_CHANNELS:
            if ch in data:

                def radar(ch: str = ch) -> RadarData:
                    in_sync(ch, self.sync.radar_tolerance_us)
                    return self._radar(data[ch], reference)

                rad = self._guard(ch, missing, radar)
                if rad is not None:
                    radars[ch] = rad
        ego_motion = self._guard(
            EGO_MOTION, missing, lambda: self.ego_motion(scene["name"], reference.timestamp_us)
        )
        return Frame(
            sample_token=sample_token,
            scene_name=scene["name"],
            timestamp_us=reference.timestamp_us,
            reference=reference,
            lidar=lidar_data,
            cameras=cameras,
            radars=radars,
            boxes=self.boxes(sample_token, reference),
            ego_motion=ego_motion,
            missing=missing,
        )

    def _guard(self, channel: str, missing: dict[str, str], load):  # noqa: ANN001, ANN202
        """Run a sensor loader; a sensor beyond the sync tolerance is missing (always, counted in
        `out_of_sync`); in tolerant mode a DataError marks the sensor missing too."""
        try:
            return load()
        except _OutOfSync as why:
            missing[channel] = str(why)
            self.out_of_sync[channel] = self.out_of_sync.get(channel, 0) + 1
            return None
        except NoEgoPose as why:  # never tolerated silently: missing and counted
            missing[channel] = str(why)
            if channel != EGO_MOTION:
                self._left_out(channel)
            return None
        except DataError as err:
            if not self.options.tolerant:
                raise
            missing[channel] = str(err)
            self.skipped[channel] = self.skipped.get(channel, 0) + 1
            return None

    def _path(self, sample_data: dict) -> Path:
        name = self._field("sample_data", sample_data, "filename")
        if not isinstance(name, str) or not name:
            raise DataError(
                f"sample_data {sample_data['token']}: filename must be a non-empty string, got "
                f"{name!r}",
                self._table_path("sample_data"),
            )
        return resolve_inside(self.dataroot, name)

    def _sweep_chain(self, sd_token: str, count: int) -> list[dict]:
        """The keyframe's sample_data and up to `count - 1` earlier ones (via `prev`), each
        strictly older than the one after it and at most `MAX_SWEEP_AGE_US` older than the
        keyframe (a sweep stamped after its keyframe, or at -5 us, is a DataError)."""
        chain: list[dict] = []
        times: list[int] = []
        for sd in self._walk("sample_data", sd_token, "prev", count):
            ts = self._timestamp("sample_data", sd)
            if chain and ts >= times[-1]:
                raise DataError(
                    f"sweep {sd.get('filename')!r} at {ts} us is not older than the sample_data "
                    f"after it ({times[-1]} us)",
                    self._table_path("sample_data"),
                )
            if chain and times[0] - ts > MAX_SWEEP_AGE_US:
                raise DataError(
                    f"sweep {sd.get('filename')!r} is {(times[0] - ts) * 1e-6:.3g} s older than "
                    f"its keyframe (at most {MAX_SWEEP_AGE_US * 1e-6:g} s)",
                    self._table_path("sample_data"),
                )
            chain.append(sd)
            times.append(ts)
        return chain

    def _present(
        self, chain: list[dict], reference: SensorPose
    ) -> tuple[list[tuple[dict, Path]], list[float]]:
        """(record, path) of the chain's files to read, and the dt (s, reference time minus the
        sweep's) of each sweep left out because its file is absent: nuScenes' keyframes-only
        download has every sweep in the tables but no sweep file, so a frame fuses the sweeps
        that exist. A keyframe's file (the chain's first, or an older keyframe) is never
        absent: its loader raises "file is missing". A sweep file that exists but does not
        parse is corrupt, not absent: its loader raises as for any file."""
        present: list[tuple[dict, Path]] = []
        absent: list[float] = []
        for k, sd in enumerate(chain):
            path = self._path(sd)
            if k > 0 and sd.get("is_key_frame") is False and not path.exists():
                lag_us = reference.timestamp_us - self._timestamp("sample_data", sd)
                absent.append(lag_us * 1e-6)
                continue
            present.append((sd, path))
        return present, absent

    def _lidar(self, sd_token: str, reference: SensorPose) -> LidarData:
        chain = self._sweep_chain(sd_token, max(1, self.options.lidar_sweeps))
        present, absent = self._present(chain, reference)
        scans = []
        for sd, path in present:
            pose = reference if sd["token"] == sd_token else self._sweep_pose(sd, LIDAR_CHANNEL)
            if pose is not None:
                scans.append((pose, load_lidar_bin(path)))
        self._count_absent(LIDAR_CHANNEL, absent)
        return lidar_sweeps(scans, reference, chain[0]["filename"], absent)

    def _sweep_pose(self, sd: dict, channel: str) -> SensorPose | None:
        """An earlier sweep's pose; None (the sweep left out, counted) when the pose source has
        none at its time, as the online synchronizer leaves it out."""
        try:
            return self.sensor_pose(sd["token"])
        except NoEgoPose:
            self._left_out(channel)
            return None

    def _count_absent(self, channel: str, absent: list[float]) -> None:
        if absent:
            self.absent_sweeps[channel] = self.absent_sweeps.get(channel, 0) + len(absent)

    def _camera(self, sd_token: str) -> CameraData:
        sd = self._get("sample_data", sd_token)
        cam = self.camera_model(sd_token)
        reduction = 1
        if self.options.image_decode == "reduced" and self.options.network_hw is not None:
            reduction = jpeg_reduction(cam.width, cam.height, self.options.network_hw)
        # the size is checked against sample_data's from the header, before decoding
        image = load_image(self._path(sd), (cam.height, cam.width), reduction)
        if reduction > 1:
            cam = reduced_camera(cam, reduction, image.shape[:2])
        return CameraData(
            pose=self.sensor_pose(sd_token), image=image, camera=cam, filename=sd["filename"]
        )

    def _radar(self, sd_token: str, reference: SensorPose) -> RadarData:
        chain = self._sweep_chain(sd_token, max(1, self.options.radar_sweeps))
        present, absent = self._present(chain, reference)
        channel = self._channel(chain[0])[1]
        # the keyframe's pose first: without it the radar is missing (NoEgoPose, counted)
        scans = [(self.sensor_pose(present[0][0]["token"]), present[0][1])] if present else []
        for sd, path in present[1:]:
            pose = self._sweep_pose(sd, channel)
            if pose is not None:
                scans.append((pose, path))
        scans = [(pose, load_radar_pcd(path, self.options.radar_filter)) for pose, path in scans]
        self._count_absent(channel, absent)
        return radar_sweeps(scans, reference, chain[0]["filename"], absent)

    def _annotation(self, token: object) -> dict:
        """A sample_annotation with every field the boxes use checked (DataError naming
        sample_annotation.json): finite centre, positive size, non-zero quaternion, existing
        attributes, a prev and a next (that they exist and loop nowhere is `table_problems`')."""
        t = "sample_annotation"
        a = self._get(t, token, "a sample")
        self._numbers(t, a, "translation", 3)
        size = self._numbers(t, a, "size", 3)
        if (size <= 0).any():
            raise DataError(
                f"{t} {a['token']}: size must be 3 positive numbers, got {size.tolist()}",
                self._table_path(t),
            )
        self._quaternion(t, a)
        attrs = self._field(t, a, "attribute_tokens")
        if not isinstance(attrs, list):
            raise DataError(
                f"{t} {a['token']}: attribute_tokens must be a list", self._table_path(t)
            )
        for at in attrs:
            self._get("attribute", at, f"{t} {a['token']}")
        for link in ("prev", "next"):  # their targets and cycles: checked when the tables load
            self._field(t, a, link)
        for n in ("num_lidar_pts", "num_radar_pts"):
            v = self._field(t, a, n)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise DataError(
                    f"{t} {a['token']}: {n} must be an integer >= 0, got {v!r}", self._table_path(t)
                )
        self._field(t, a, "category_name")
        return a

    def boxes(self, sample_token: str, reference: SensorPose) -> Boxes:
        """GT boxes of a sample, in the LIDAR_TOP frame at the reference time and global."""
        from nuscenes.eval.detection.utils import category_to_detection_name

        anns = [self._annotation(t) for t in self._get("sample", sample_token).get("anns", [])]
        global_to_lidar = (reference.sensor_to_global).inverse()
        m = len(anns)
        center_g = np.array([a["translation"] for a in anns], dtype=np.float64).reshape(m, 3)
        rot_g = np.array([a["rotation"] for a in anns], dtype=np.float64).reshape(m, 4)
        rot_g /= np.linalg.norm(rot_g, axis=1, keepdims=True).clip(1e-12)  # non-unit: normalized
        with np.errstate(divide="ignore", invalid="ignore"):  # prev and next at the same time
            vel_g = np.array([self.nusc.box_velocity(a["token"])[:2] for a in anns]).reshape(m, 2)
        vel_g[~np.isfinite(vel_g)] = np.nan  # no velocity, as the devkit's "no neighbour"
        center_l = global_to_lidar.apply(center_g)
        yaw_l = np.array(
            [yaw_from_matrix(global_to_lidar.rotation @ quaternion_to_matrix(q)) for q in rot_g]
        )
        vel3 = np.column_stack([np.nan_to_num(vel_g), np.zeros(m)])
        vel_l = global_to_lidar.apply_vectors(vel3)[:, :2]
        vel_l[np.isnan(vel_g).any(axis=1)] = np.nan
        return Boxes(
            tokens=tuple(a["token"] for a in anns),
            categories=tuple(a["category_name"] for a in anns),
            detection_names=tuple(category_to_detection_name(a["category_name"]) for a in anns),
            attributes=tuple(
                self.nusc.get("attribute", a["attribute_tokens"][0])["name"]
                if a["attribute_tokens"]
                else ""
                for a in anns
            ),
            center_lidar=center_l,
            yaw_lidar=yaw_l,
            size_wlh=np.array([a["size"] for a in anns], dtype=np.float64).reshape(m, 3),
            velocity_lidar=vel_l,
            center_global=center_g,
            rotation_global=rot_g,
            velocity_global=vel_g,
            num_lidar_pts=np.array([a["num_lidar_pts"] for a in anns], dtype=np.int64),
            num_radar_pts=np.array([a["num_radar_pts"] for a in anns], dtype=np.int64),
        )

    def ego_motion(self, scene_name: str, timestamp_us: int) -> EgoMotion | None:
        """Velocity and yaw rate from the CAN bus when present, else from ego poses; with the
        pose source `gnss-imu`, from the estimated poses (the CAN bus `pose` is the log's)."""
        if self.pose_source == POSE_SOURCE:
            stream = self.pose_stream(scene_name)
            return EgoMotion(
                stream.velocity(timestamp_us), stream.yaw_rate(timestamp_us), POSE_SOURCE
            )
        can = self.can_bus(scene_name)
        if can is not None:
            return EgoMotion(can.velocity(timestamp_us), can.yaw_rate(timestamp_us), "can_bus")
        if len(self.ego_poses) < 2:
            return None
        try:
            stream = self.ego_poses
            return EgoMotion(
                stream.velocity(timestamp_us), stream.yaw_rate(timestamp_us), "ego_pose"
            )
        except DataError:
            return None
