"""Small synthetic frames and a tiny config for fast model tests (no files, no devkit).

Six cameras look around the car from the LIDAR_TOP origin; a few cars and pedestrians stand on
a flat ground, each with LIDAR points on its surface and a radar return.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from calibration import PinholeCamera, Transform, quaternion_from_yaw
from fusion.config import CAMERA_CHANNELS, PipelineConfig, load_config
from fusion.frame import Boxes, CameraData, Frame, LidarData, RadarData, SensorPose
from fusion.model.params import ATTRIBUTE_NAMES, ModelParams

RAW_HW = (96, 264)  # raw image (height, width): 1.5x the network input of tiny_config


def tiny_config(**model_overrides: object) -> PipelineConfig:
    """The tiny preset shrunk to a 32 x 32 BEV grid (0.8 m), 64 x 176 images, 8 depth bins."""
    cfg = load_config("tiny")
    r = (-12.8, -12.8, -5.0, 12.8, 12.8, 3.0)
    return dataclasses.replace(
        cfg,
        point_cloud=dataclasses.replace(
            cfg.point_cloud, point_range=r, max_points_per_voxel=8, max_voxels=1000, sweeps=1
        ),
        bev=dataclasses.replace(cfg.bev, bev_range=(-12.8, -12.8, -10.0, 12.8, 12.8, 10.0)),
        camera=dataclasses.replace(
            cfg.camera,
            image_hw=(64, 176),
            depth_min=1.0,
            depth_max=25.0,
            depth_step=3.0,
            channels_out=8,
        ),
        model=dataclasses.replace(
            cfg.model,
            lidar_channels=8,
            radar_channels=8,
            bev_channels=16,
            head_channels=16,
            max_detections=50,
            **model_overrides,
        ),
        train=dataclasses.replace(cfg.train, batch_size=2, epochs=1),
        params=dataclasses.replace(cfg.params, image_widths=(8, 8, 16, 16, 16), bev_blocks=(1, 1)),
    )


def tiny_params() -> ModelParams:
    return tiny_config().params


def _pose(channel: str, sensor_to_ego: np.ndarray, ego_to_global: np.ndarray, t: int) -> SensorPose:
    return SensorPose(
        channel,
        t,
        Transform(sensor_to_ego, src=channel, dst="ego"),
        Transform(ego_to_global, src="ego", dst="global"),
    )


def _yaw_matrix(yaw: float, t: tuple[float, float, float]) -> np.ndarray:
    m = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = t
    return m


def make_frame(seed: int, token: str | None = None, with_radar: bool = True) -> Frame:
    """A random frame: 2-5 cars and pedestrians within 10 m, LIDAR, six cameras, radar."""
    rng = np.random.default_rng(seed)
    t_ref = 1_000_000 + seed
    lidar_to_ego = _yaw_matrix(-math.pi / 2, (0.9, 0.0, 1.8))
    ego_to_global = _yaw_matrix(0.3 + 0.1 * seed, (100.0 + seed, 200.0, 0.0))
    reference = _pose("LIDAR_TOP", lidar_to_ego, ego_to_global, t_ref)

    n = int(rng.integers(2, 6))
    kinds = rng.integers(0, 2, n)  # 0 car, 1 pedestrian
    ang = rng.uniform(-math.pi, math.pi, n)
    dist = rng.uniform(3.0, 10.0, n)
    centers = np.column_stack([dist * np.cos(ang), dist * np.sin(ang), np.full(n, -1.0)])
    wlh = np.where(kinds[:, None] == 0, [[1.9, 4.5, 1.6]], [[0.6, 0.7, 1.7]]).astype(np.float64)
    yaw = rng.uniform(-math.pi, math.pi, n)
    vel = rng.normal(0.0, 2.0, (n, 2))

    pts = [np.column_stack([rng.uniform(-12, 12, (400, 2)), np.full(400, -1.8)])]  # ground
    for c, (w, l, h), a in zip(centers, wlh, yaw, strict=True):
        local = rng.uniform(-0.5, 0.5, (60, 3)) * [l, w, h]
        cs, sn = math.cos(a), math.sin(a)
        pts.append(local @ np.array([[cs, sn, 0], [-sn, cs, 0], [0, 0, 1]]) + c)
    xyz = np.concatenate(pts)
    lidar_pts = np.column_stack([xyz, rng.uniform(0, 255, len(xyz)), np.zeros(len(xyz))]).astype(
        np.float32
    )
    lidar = LidarData(reference, lidar_pts, 1, "fake.pcd.bin", len(lidar_pts))

    h_raw, w_raw = RAW_HW
    cameras = {}
    for i, ch in enumerate(CAMERA_CHANNELS):
        th = math.radians([55, 0, -55, 110, 180, -110][i]) + math.pi / 2  # LIDAR y is forward
        rot = np.array(
            [[math.sin(th), 0, math.cos(th)], [-math.cos(th), 0, math.sin(th)], [0, -1, 0]]
        )
        cam_to_lidar = np.eye(4)
        cam_to_lidar[:3, :3] = rot
        cam_to_lidar[:3, 3] = (0.0, 0.0, -0.3)
        k = np.array([[150.0, 0, w_raw / 2], [0, 150.0, h_raw / 2], [0, 0, 1]])
        pose = _pose(ch, lidar_to_ego @ cam_to_lidar, ego_to_global, t_ref)
        image = rng.integers(0, 256, (h_raw, w_raw, 3), dtype=np.uint8)
        cameras[ch] = CameraData(pose, image, PinholeCamera(k, w_raw, h_raw), f"{ch}.jpg")

    radars = {}
    if with_radar:
        rpts = np.column_stack([centers, rng.normal(5, 2, n), vel, np.zeros(n)]).astype(np.float32)
        radar_pose = _pose("RADAR_FRONT", lidar_to_ego, ego_to_global, t_ref)
        radars["RADAR_FRONT"] = RadarData(radar_pose, rpts, 1, "fake.pcd")

    names = tuple("car" if k == 0 else "pedestrian" for k in kinds)
    world = Transform(ego_to_global @ lidar_to_ego, src="LIDAR_TOP", dst="global")
    boxes = Boxes(
        tokens=tuple(f"box{i}" for i in range(n)),
        categories=tuple("vehicle.car" if k == 0 else "human.pedestrian.adult" for k in kinds),
        detection_names=names,
        attributes=tuple("vehicle.moving" if k == 0 else "pedestrian.standing" for k in kinds),
        center_lidar=centers,
        yaw_lidar=yaw,
        size_wlh=wlh,
        velocity_lidar=vel,
        center_global=world.apply(centers),
        rotation_global=np.array([quaternion_from_yaw(a) for a in yaw]),  # not used by the model
        velocity_global=world.apply_vectors(np.column_stack([vel, np.zeros(n)]))[:, :2],
        num_lidar_pts=np.full(n, 60),
        num_radar_pts=np.ones(n, dtype=np.int64),
    )
    return Frame(
        token or f"fake{seed}", "scene-0001", t_ref, reference, lidar, cameras, radars, boxes
    )


class FakeSource:
    """Frames by token, as `NuScenesReader.frame` gives them."""

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = {f.sample_token: f for f in frames}

    def frame(self, sample_token: str) -> Frame:
        return self.frames[sample_token]


def oracle_maps(targets):
    """Head maps a perfect network would output for these targets (logits of the heatmap)."""
    hm = np.clip(targets.heatmap, 1e-6, 1 - 1e-6)
    logits = np.log(hm / (1 - hm)).astype(np.float32)
    attr = np.full((len(ATTRIBUTE_NAMES), *targets.attribute.shape), -10.0, np.float32)
    iy, ix = np.nonzero(targets.attribute >= 0)
    attr[targets.attribute[iy, ix], iy, ix] = 10.0
    return logits, targets.regression, attr
