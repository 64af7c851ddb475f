"""The nuScenes reader: any dataroot (real or synthetic), read through the official devkit.

`NuScenesReader(dataroot, version).frame(sample_token)` returns a `Frame` synchronized to the
LIDAR_TOP keyframe: LIDAR sweeps and radar sweeps motion-compensated into the LIDAR_TOP frame at
the reference time, six cameras with their own timestamps and ego poses, GT boxes.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from calibration import PinholeCamera, Transform, quaternion_to_matrix, yaw_from_matrix
from fusion.config import (
    CAMERA_CHANNELS,
    LIDAR_CHANNEL,
    RADAR_CHANNELS,
    PipelineConfig,
    load_config,
)
from fusion.errors import DataError
from fusion.frame import Boxes, CameraData, EgoMotion, Frame, LidarData, RadarData, SensorPose
from fusion.poses import CanBus, PoseStream, load_can_bus, pose_stream_from_records
from fusion.sensor_io import RadarFilter, load_image, load_lidar_bin, load_radar_pcd, resolve_inside
from fusion.sync import Message, transform_between

TABLES = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)

SWEEP_CLOSE_M = 1.0

# Radar fields (rows of the devkit's (18, N) array) we keep.
_RADAR_X, _RADAR_RCS, _RADAR_VX_COMP, _RADAR_VY_COMP = 0, 5, 8, 9


@dataclass(frozen=True)
class ReaderOptions:
    """What a frame holds. Defaults follow the pipeline config."""

    lidar_sweeps: int = 10
    radar_sweeps: int = 6
    radar_filter: RadarFilter = RadarFilter()
    load_images: bool = True
    tolerant: bool = False  # mark a broken sensor missing instead of raising
    # "reduced": JPEGs decoded at reduced DCT scale for a network input of `network_hw` (H, W),
    # the camera model scaled with them (fusion.pipeline.decode_camera_image)
    image_decode: Literal["full", "reduced"] = "full"
    network_hw: tuple[int, int] | None = None

    @classmethod
    def from_config(cls, cfg: PipelineConfig, **overrides: object) -> ReaderOptions:
        base = cls(
            lidar_sweeps=cfg.point_cloud.sweeps,
            radar_sweeps=cfg.radar.sweeps,
            radar_filter=RadarFilter.preset(cfg.radar.filter),
            network_hw=cfg.camera.image_size,
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
        if options is None:
            options = ReaderOptions.from_config(config or load_config("tiny"))
        self.options = options
        self.skipped: dict[str, int] = {}  # channel -> sensors marked missing (tolerant mode)
        self._check_tables()
        from nuscenes.nuscenes import NuScenes

        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet):
                self.nusc = NuScenes(version=version, dataroot=str(self.dataroot), verbose=False)
        except (KeyError, AssertionError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise DataError(f"the devkit cannot load {version}: {exc!r}", self.dataroot) from exc
        self._can_bus: dict[str, CanBus | None] = {}

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

    # -- scenes and samples ------------------------------------------------------------------
    @property
    def scene_names(self) -> list[str]:
        return [s["name"] for s in self.nusc.scene]

    def split_scenes(self, split: str) -> list[str]:
        """Scene names of a split: `<version>/splits.json` first, then the devkit's splits."""
        custom = self.dataroot / self.version / "splits.json"
        if custom.is_file():
            splits = json.loads(custom.read_text())
            if split in splits:
                return list(splits[split])
        from nuscenes.utils.splits import create_splits_scenes

        official = create_splits_scenes(verbose=False)
        if split not in official:
            known = sorted(official) + (
                sorted(json.loads(custom.read_text())) if custom.is_file() else []
            )
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
            tok = s["first_sample_token"]
            while tok:
                tokens.append(tok)
                tok = self.nusc.get("sample", tok)["next"]
        return tokens

    # -- calibration and poses ---------------------------------------------------------------
    def sensor_pose(self, sample_data_token: str) -> SensorPose:
        sd = self.nusc.get("sample_data", sample_data_token)
        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        channel = self.nusc.get("sensor", cs["sensor_token"])["channel"]
        ep = self.nusc.get("ego_pose", sd["ego_pose_token"])
        return SensorPose(
            channel=channel,
            timestamp_us=int(sd["timestamp"]),
            sensor_to_ego=Transform.from_translation_quaternion(
                cs["translation"], cs["rotation"], src=channel, dst="ego"
            ),
            ego_to_global=Transform.from_translation_quaternion(
                ep["translation"], ep["rotation"], src="ego", dst="global"
            ),
        )

    @cached_property
    def ego_poses(self) -> PoseStream:
        """All `ego_pose` records as one stream (one log per dataroot is typical; poses of
        different logs never interleave in time)."""
        return pose_stream_from_records(self.nusc.ego_pose)

    def pose_stream(self, scene_name: str) -> PoseStream:
        """The scene's GPS/IMU pose stream: the CAN bus `pose` messages (50 Hz) when the
        dataroot has them, else the `ego_pose` records."""
        can = self.can_bus(scene_name)
        return can.pose if can is not None else self.ego_poses

    def messages(self, scene_name: str) -> list[Message[str]]:
        """Every sample_data of a scene (keyframes and sweeps) as a time-stamped message whose
        payload is its sample_data token: the input of `fusion.sync.Synchronizer`."""
        scene = next((s for s in self.nusc.scene if s["name"] == scene_name), None)
        if scene is None:
            raise DataError(f"unknown scene {scene_name!r}")
        first = self.nusc.get("sample", scene["first_sample_token"])
        out = []
        for sd_token in first["data"].values():
            sd = self.nusc.get("sample_data", sd_token)
            while sd["prev"]:  # rewind to the scene's first sweep of this sensor
                sd = self.nusc.get("sample_data", sd["prev"])
            while True:
                cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
                channel = self.nusc.get("sensor", cs["sensor_token"])["channel"]
                out.append(Message(channel, int(sd["timestamp"]), sd["token"]))
                if not sd["next"]:
                    break
                sd = self.nusc.get("sample_data", sd["next"])
        return sorted(out, key=lambda m: (m.timestamp_us, m.channel))

    def can_bus(self, scene_name: str) -> CanBus | None:
        if scene_name not in self._can_bus:
            self._can_bus[scene_name] = load_can_bus(self.dataroot, scene_name)
        return self._can_bus[scene_name]

    def camera_model(self, sample_data_token: str) -> PinholeCamera:
        sd = self.nusc.get("sample_data", sample_data_token)
        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        if not cs["camera_intrinsic"]:
            raise DataError("camera has no intrinsics", sd["filename"])
        return PinholeCamera(np.array(cs["camera_intrinsic"]), int(sd["width"]), int(sd["height"]))

    # -- frames ------------------------------------------------------------------------------
    def frame(self, sample_token: str) -> Frame:
        """The synchronized frame of one sample."""
        try:
            sample = self.nusc.get("sample", sample_token)
        except KeyError as exc:
            raise DataError(f"unknown sample token {sample_token!r}") from exc
        scene = self.nusc.get("scene", sample["scene_token"])
        data = sample["data"]
        if LIDAR_CHANNEL not in data:
            raise DataError(f"sample {sample_token} has no {LIDAR_CHANNEL} keyframe")
        reference = self.sensor_pose(data[LIDAR_CHANNEL])
        missing: dict[str, str] = {}

        lidar = self._guard(
            LIDAR_CHANNEL, missing, lambda: self._lidar(data[LIDAR_CHANNEL], reference)
        )
        cameras = {}
        if self.options.load_images:
            for ch in CAMERA_CHANNELS:
                if ch in data:
                    cam = self._guard(ch, missing, lambda ch=ch: self._camera(data[ch]))
                    if cam is not None:
                        cameras[ch] = cam
        radars = {}
        for ch in RADAR_CHANNELS:
            if ch in data:
                rad = self._guard(ch, missing, lambda ch=ch: self._radar(data[ch], reference))
                if rad is not None:
                    radars[ch] = rad
        return Frame(
            sample_token=sample_token,
            scene_name=scene["name"],
            timestamp_us=reference.timestamp_us,
            reference=reference,
            lidar=lidar,
            cameras=cameras,
            radars=radars,
            boxes=self.boxes(sample_token, reference),
            ego_motion=self.ego_motion(scene["name"], reference.timestamp_us),
            missing=missing,
        )

    def _guard(self, channel: str, missing: dict[str, str], load):  # noqa: ANN001, ANN202
        """Run a sensor loader; in tolerant mode a DataError marks the sensor missing."""
        try:
            return load()
        except DataError as err:
            if not self.options.tolerant:
                raise
            missing[channel] = str(err)
            self.skipped[channel] = self.skipped.get(channel, 0) + 1
            return None

    def _path(self, sample_data: dict) -> Path:
        return resolve_inside(self.dataroot, sample_data["filename"])

    def _sweep_chain(self, sd_token: str, count: int) -> list[dict]:
        """The keyframe's sample_data and up to `count - 1` earlier ones (via `prev`)."""
        chain = [self.nusc.get("sample_data", sd_token)]
        while len(chain) < count and chain[-1]["prev"]:
            chain.append(self.nusc.get("sample_data", chain[-1]["prev"]))
        return chain

    def _lidar(self, sd_token: str, reference: SensorPose) -> LidarData:
        chain = self._sweep_chain(sd_token, max(1, self.options.lidar_sweeps))
        clouds = []
        for sd in chain:
            pts = load_lidar_bin(self._path(sd))
            if sd["token"] == sd_token:  # the keyframe scan is already in the reference frame
                pose, xyz = reference, pts[:, :3]
            else:
                # Earlier sweeps drop the ego vehicle's own returns (|x|, |y| < 1 m in the
                # sensor frame), as the devkit's and mmdet3d's multi-sweep loaders do.
                pts = pts[
                    ~((np.abs(pts[:, 0]) < SWEEP_CLOSE_M) & (np.abs(pts[:, 1]) < SWEEP_CLOSE_M))
                ]
                pose = self.sensor_pose(sd["token"])
                xyz = transform_between(pose, reference).apply(pts[:, :3])
            dt = np.full((len(pts), 1), (reference.timestamp_us - pose.timestamp_us) * 1e-6)
            clouds.append(np.hstack([xyz, pts[:, 3:4], dt]).astype(np.float32))
        return LidarData(
            pose=reference,
            points=np.concatenate(clouds),
            num_sweeps=len(chain),
            filename=chain[0]["filename"],
            keyframe_points=len(clouds[0]),
        )

    def _camera(self, sd_token: str) -> CameraData:
        sd = self.nusc.get("sample_data", sd_token)
        cam = self.camera_model(sd_token)
        if self.options.image_decode == "reduced" and self.options.network_hw is not None:
            from fusion.pipeline import decode_camera_image

            path = self._path(sd)
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise DataError(f"cannot read file: {exc.strerror}", path) from exc
            image, cam = decode_camera_image(raw, cam, self.options.network_hw, "reduced", path)
            return CameraData(
                pose=self.sensor_pose(sd_token), image=image, camera=cam, filename=sd["filename"]
            )
        image = load_image(self._path(sd))
        if image.shape[:2] != (cam.height, cam.width):
            raise DataError(
                f"image is {image.shape[1]}x{image.shape[0]}, sample_data says "
                f"{cam.width}x{cam.height}",
                self._path(sd),
            )
        return CameraData(
            pose=self.sensor_pose(sd_token), image=image, camera=cam, filename=sd["filename"]
        )

    def _radar(self, sd_token: str, reference: SensorPose) -> RadarData:
        chain = self._sweep_chain(sd_token, max(1, self.options.radar_sweeps))
        clouds = []
        for sd in chain:
            raw = load_radar_pcd(self._path(sd), self.options.radar_filter)
            pose = self.sensor_pose(sd["token"])
            to_ref = transform_between(pose, reference)
            xyz = to_ref.apply(raw[_RADAR_X : _RADAR_X + 3].T)
            vel = np.zeros((raw.shape[1], 3))
            vel[:, 0], vel[:, 1] = raw[_RADAR_VX_COMP], raw[_RADAR_VY_COMP]
            vel = to_ref.apply_vectors(vel)
            dt = np.full((raw.shape[1], 1), (reference.timestamp_us - pose.timestamp_us) * 1e-6)
            clouds.append(
                np.hstack([xyz, raw[_RADAR_RCS][:, None], vel[:, :2], dt]).astype(np.float32)
            )
        first_pose = self.sensor_pose(sd_token)
        return RadarData(
            pose=first_pose,
            points=np.concatenate(clouds).reshape(-1, 7),
            num_sweeps=len(chain),
            filename=chain[0]["filename"],
        )

    def boxes(self, sample_token: str, reference: SensorPose) -> Boxes:
        """GT boxes of a sample, in the LIDAR_TOP frame at the reference time and global."""
        from nuscenes.eval.detection.utils import category_to_detection_name

        anns = [
            self.nusc.get("sample_annotation", t)
            for t in self.nusc.get("sample", sample_token)["anns"]
        ]
        global_to_lidar = (reference.sensor_to_global).inverse()
        m = len(anns)
        center_g = np.array([a["translation"] for a in anns], dtype=np.float64).reshape(m, 3)
        rot_g = np.array([a["rotation"] for a in anns], dtype=np.float64).reshape(m, 4)
        vel_g = np.array([self.nusc.box_velocity(a["token"])[:2] for a in anns]).reshape(m, 2)
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
        """Velocity and yaw rate from the CAN bus when present, else from ego poses."""
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
