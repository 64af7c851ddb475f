"""Frames -> model inputs and training targets, with augmentation and modality dropout.

Augmentation is applied consistently to every sensor's geometry: one global transform of the
LIDAR_TOP frame (rotation about z, scale, flips) moves LIDAR and radar points, GT boxes and
velocities and the camera frustums alike; each image is resized and cropped, and its camera
model (intrinsics) is resized and cropped with it. Depth targets come from the LIDAR points
projected into each network-input camera (before the global transform, which the cameras'
own depth bins do not see).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from calibration import PinholeCamera
from fusion.config import (
    CAMERA_CHANNELS,
    DETECTION_CLASSES,
    LIDAR_CHANNEL,
    RADAR_CHANNELS,
    AugmentParams,
    PipelineConfig,
)
from fusion.errors import FusionError
from fusion.frame import Frame
from fusion.model.camera import IMAGE_MEAN, IMAGE_STD
from fusion.model.camera_geometry import camera_frustum_lidar, depth_targets
from fusion.model.detector import Modality, Variant, variant_modalities
from fusion.model.inputs import BatchInputs, SampleInputs, Voxels, collate_inputs
from fusion.model.losses import TargetBatch
from fusion.model.params import ATTRIBUTE_NAMES, CLASS_ATTRIBUTE_PREFIX, ModelParams
from fusion.model.targets import TargetMaps, encode_targets
from kernels import precompute_bev_pool, voxelize

DROP_GROUPS = ("cameras", "radars")


class FrameSource(Protocol):
    """Anything that yields frames by sample token (`fusion.nuscenes.NuScenesReader`)."""

    def frame(self, sample_token: str) -> Frame: ...


# -- geometry of the global augmentation --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GlobalTransform:
    """`p' = matrix @ p` for points in the LIDAR_TOP frame: rotation about z, scale, flips."""

    matrix: NDArray[np.float64]  # (3, 3)

    @classmethod
    def identity(cls) -> GlobalTransform:
        return cls(np.eye(3))

    @classmethod
    def random(cls, rng: np.random.Generator, params: AugmentParams) -> GlobalTransform:
        a = rng.uniform(-params.rotation, params.rotation)
        c, s = math.cos(a), math.sin(a)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        flip = np.diag(
            [
                -1.0 if rng.random() < params.flip else 1.0,
                -1.0 if rng.random() < params.flip else 1.0,
                1.0,
            ]
        )
        return cls(rng.uniform(*params.scale) * flip @ rot)

    @property
    def scale(self) -> float:
        return float(abs(np.linalg.det(self.matrix)) ** (1.0 / 3.0))

    def points(self, points: NDArray[np.floating]) -> NDArray[np.float32]:
        """(N, C) with x y z first -> a transformed copy."""
        out = np.array(points, dtype=np.float32, copy=True)
        out[:, :3] = points[:, :3] @ self.matrix.T
        return out

    def vectors_2d(self, v: NDArray[np.floating]) -> NDArray[np.float64]:
        """(N, 2) BEV vectors (velocities) -> transformed copy."""
        return np.asarray(v, np.float64) @ self.matrix[:2, :2].T

    def boxes(self, boxes: NDArray[np.floating]) -> NDArray[np.float64]:
        """(M, 7) x y z l w h yaw -> transformed copy (sizes scaled, heading rotated/flipped)."""
        b = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 7)
        b[:, :3] = b[:, :3] @ self.matrix.T
        b[:, 3:6] *= self.scale
        heading = np.column_stack([np.cos(b[:, 6]), np.sin(b[:, 6])]) @ self.matrix[:2, :2].T
        b[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
        return b

    def frustum(self, points: NDArray[np.float32]) -> NDArray[np.float32]:
        """(..., 3) frustum points -> transformed copy."""
        return (points @ self.matrix.T).astype(np.float32)


# -- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageView:
    """Raw image -> network input: resize by `scale`, then crop [x0, x0 + W) x [y0, y0 + H)
    (negative offsets pad)."""

    scale: float
    x0: int
    y0: int


def image_view(
    raw_width: int,
    raw_height: int,
    cfg: PipelineConfig,
    rng: np.random.Generator | None = None,
    params: AugmentParams | None = None,
) -> ImageView:
    """Fit the image width to the network width and keep the bottom (the road); with `rng`,
    jitter the scale and the horizontal crop."""
    h, w = cfg.camera.image_hw
    s = w / raw_width
    if rng is not None and params is not None:
        s *= 1.0 + rng.uniform(*params.image_resize)
    new_w, new_h = round(raw_width * s), round(raw_height * s)
    margin = new_w - w
    x0 = margin // 2
    if rng is not None and params is not None and params.image_crop and margin > 0:
        x0 = int(rng.integers(0, margin + 1))
    return ImageView(s, x0, new_h - h)


def view_camera(camera: PinholeCamera, view: ImageView, cfg: PipelineConfig) -> PinholeCamera:
    """The camera model of the network-input image."""
    h, w = cfg.camera.image_hw
    return camera.scaled(view.scale).cropped(view.x0, view.y0, w, h)


def warp_image(
    image: NDArray[np.uint8], view: ImageView, cfg: PipelineConfig
) -> NDArray[np.float32]:
    """(h, w, 3) uint8 RGB -> (3, H, W) float32 normalized network input (padding is 0)."""
    h, w = cfg.camera.image_hw
    new_w, new_h = round(image.shape[1] * view.scale), round(image.shape[0] * view.scale)
    interp = cv2.INTER_AREA if view.scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    norm = (resized.astype(np.float32) / 255.0 - np.float32(IMAGE_MEAN)) / np.float32(IMAGE_STD)
    out = np.zeros((h, w, 3), np.float32)
    sx0, sy0 = max(view.x0, 0), max(view.y0, 0)
    dx0, dy0 = sx0 - view.x0, sy0 - view.y0
    cw, ch = min(new_w - sx0, w - dx0), min(new_h - sy0, h - dy0)
    if cw > 0 and ch > 0:
        out[dy0 : dy0 + ch, dx0 : dx0 + cw] = norm[sy0 : sy0 + ch, sx0 : sx0 + cw]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


@dataclass(frozen=True, eq=False)
class CameraInputs:
    """Network-input images of all configured cameras, and the geometry of the present ones."""

    images: NDArray[np.float32]  # (Ncam, 3, H, W), zeros where absent
    present: NDArray[np.bool_]  # (Ncam,)
    cameras: tuple[PinholeCamera | None, ...]  # network-input camera models
    cam_to_lidar: tuple[NDArray[np.float64] | None, ...]  # (4, 4) LIDAR(t_ref) <- camera


def camera_inputs(
    frame: Frame,
    cfg: PipelineConfig,
    rng: np.random.Generator | None = None,
    params: AugmentParams | None = None,
) -> CameraInputs:
    """Resize/crop every configured camera of the frame (absent ones stay zero)."""
    h, w = cfg.camera.image_hw
    n = len(cfg.camera.channels)
    images = np.zeros((n, 3, h, w), np.float32)
    present = np.zeros(n, bool)
    cams: list[PinholeCamera | None] = [None] * n
    poses: list[NDArray[np.float64] | None] = [None] * n
    for i, ch in enumerate(cfg.camera.channels):
        data = frame.cameras.get(ch)
        if data is None:
            continue
        view = image_view(data.image.shape[1], data.image.shape[0], cfg, rng, params)
        images[i] = warp_image(data.image, view, cfg)
        cams[i] = view_camera(data.camera, view, cfg)
        poses[i] = frame.sensor_to_lidar(ch).matrix
        present[i] = True
    return CameraInputs(images, present, tuple(cams), tuple(poses))


def camera_frustums(
    cams: CameraInputs, cfg: PipelineConfig, transform: GlobalTransform | None = None
) -> NDArray[np.float32] | None:
    """(Npresent, D, h, w, 3) frustum points of the present cameras in the (augmented)
    LIDAR_TOP frame, or None when no camera is present."""
    pts = [
        camera_frustum_lidar(cam, pose, cfg.camera)
        for cam, pose in zip(cams.cameras, cams.cam_to_lidar, strict=True)
        if cam is not None and pose is not None
    ]
    if not pts:
        return None
    out = np.stack(pts)
    return out if transform is None else transform.frustum(out)


def camera_geometry(frustums: NDArray[np.float32] | None, cfg: PipelineConfig):  # noqa: ANN201
    """`kernels.precompute_bev_pool` geometry of the frustums on the BEV grid (or None)."""
    if frustums is None:
        return None
    return precompute_bev_pool(frustums, cfg.bev.bev_range, cfg.bev.cell_size)


# -- point clouds -------------------------------------------------------------------------------


def lidar_voxels(points: NDArray[np.float32], cfg: PipelineConfig) -> Voxels:
    """(N, 5) LIDAR points -> hard pillars with `kernels.voxelize`."""
    pc = cfg.point_cloud
    v = voxelize(
        np.ascontiguousarray(points, dtype=np.float32),
        pc.voxel_size,
        pc.point_range,
        pc.max_points_per_voxel,
        pc.max_voxels,
        mode="hard",
    )
    return Voxels(
        np.asarray(v.features), np.asarray(v.coords, np.int32), np.asarray(v.num_points, np.int32)
    )


def radar_raster(points: NDArray[np.float32], cfg: PipelineConfig) -> NDArray[np.float32]:
    """(N, 7) radar points -> (`cfg.radar.raster_channels`, ny, nx) raster with
    `kernels.rasterize_radar`."""
    from kernels import rasterize_radar

    return np.asarray(
        rasterize_radar(
            np.ascontiguousarray(points, np.float32), cfg.bev.bev_range, cfg.bev.cell_size
        ),
        np.float32,
    )


def radar_points(frame: Frame, cfg: PipelineConfig) -> NDArray[np.float32]:
    """All configured radars' points of a frame, (N, 7) in the LIDAR_TOP frame."""
    clouds = [frame.radars[ch].points for ch in cfg.radar.channels if ch in frame.radars]
    empty = np.zeros((0, cfg.radar.features), np.float32)
    return np.concatenate(clouds).astype(np.float32) if clouds else empty


# -- sensor removal -----------------------------------------------------------------------------


def check_drop(names: Iterable[str]) -> tuple[str, ...]:
    """Validate `--drop` names: LIDAR_TOP, a camera or radar channel, `cameras` or `radars`."""
    known = (LIDAR_CHANNEL, *CAMERA_CHANNELS, *RADAR_CHANNELS, *DROP_GROUPS)
    out = tuple(names)
    for name in out:
        if name not in known:
            raise FusionError(f"cannot drop unknown sensor {name!r} (known: {', '.join(known)})")
    return out


def drop_sensors(frame: Frame, names: Iterable[str]) -> Frame:
    """A copy of `frame` without the named sensors (see `check_drop`)."""
    names = set(check_drop(names))
    if not names:
        return frame
    cameras = (
        {} if "cameras" in names else {k: v for k, v in frame.cameras.items() if k not in names}
    )
    radars = {} if "radars" in names else {k: v for k, v in frame.radars.items() if k not in names}
    lidar = None if LIDAR_CHANNEL in names else frame.lidar
    return replace(frame, lidar=lidar, cameras=cameras, radars=radars)


# -- one sample ---------------------------------------------------------------------------------


def sample_inputs(
    frame: Frame,
    cfg: PipelineConfig,
    modalities: Sequence[Modality],
    transform: GlobalTransform | None = None,
    rng: np.random.Generator | None = None,
    params: AugmentParams | None = None,
) -> tuple[SampleInputs, CameraInputs | None]:
    """Everything a detector of `modalities` reads from a frame (sensors absent from the
    frame are absent from the inputs)."""
    n_cam = len(cfg.camera.channels)
    h, w = cfg.camera.image_hw
    images = np.zeros((n_cam, 3, h, w), np.float32)
    present = np.zeros(n_cam, bool)
    geometry = None
    cams = None
    if "camera" in modalities:
        cams = camera_inputs(frame, cfg, rng, params)
        images, present = cams.images, cams.present
        geometry = camera_geometry(camera_frustums(cams, cfg, transform), cfg)
    voxels = None
    if "lidar" in modalities and frame.lidar is not None:
        pts = frame.lidar.points if transform is None else transform.points(frame.lidar.points)
        voxels = lidar_voxels(pts, cfg)
    raster = None
    if "radar" in modalities and frame.radars:
        pts = radar_points(frame, cfg)
        if transform is not None:
            pts = transform.points(pts)
            pts[:, 4:6] = transform.vectors_2d(pts[:, 4:6])
        raster = radar_raster(pts, cfg)
    return SampleInputs(images, present, geometry, voxels, raster), cams


@dataclass(frozen=True, eq=False)
class TrainingSample:
    """One training sample: inputs, targets on the grid, and per-camera depth-bin targets
    `depth` (Ncam, h, w) int64 (-1 where no LIDAR point or camera absent)."""

    sample_token: str
    inputs: SampleInputs
    targets: TargetMaps
    depth: NDArray[np.int64]


def box_targets(
    frame: Frame, cfg: PipelineConfig, params: ModelParams, transform: GlobalTransform | None = None
) -> TargetMaps:
    """Targets from the frame's GT boxes of the detection classes seen by a sensor (as the
    devkit filters them: at least one LIDAR or radar point)."""
    boxes = frame.boxes
    keep = []
    if boxes is not None:
        keep = [
            i
            for i, name in enumerate(boxes.detection_names)
            if name is not None and boxes.num_lidar_pts[i] + boxes.num_radar_pts[i] > 0
        ]
    if boxes is None or not keep:
        arr, vel = np.zeros((0, 7)), np.zeros((0, 2))
        labels = attrs = np.zeros(0, np.int64)
    else:
        arr = boxes.as_array()[keep]
        vel = boxes.velocity_lidar[keep]
        labels = np.array([DETECTION_CLASSES.index(boxes.detection_names[i]) for i in keep])
        attrs = np.array(
            [_attribute_index(boxes.detection_names[i], boxes.attributes[i]) for i in keep]
        )
    if transform is not None:
        arr = transform.boxes(arr)
        vel = transform.vectors_2d(vel)
    return encode_targets(arr, labels, vel, attrs, cfg.bev, len(DETECTION_CLASSES), params)


def _attribute_index(detection_name: str | None, attribute: str) -> int:
    """Index in ATTRIBUTE_NAMES, or -1 when absent or not one the devkit scores for the class
    (real annotations carry a few, e.g. a barrier marked pedestrian.standing)."""
    prefix = CLASS_ATTRIBUTE_PREFIX.get(detection_name or "", "")
    if not prefix or not attribute.startswith(prefix) or attribute not in ATTRIBUTE_NAMES:
        return -1
    return ATTRIBUTE_NAMES.index(attribute)


def training_sample(
    frame: Frame,
    cfg: PipelineConfig,
    variant: Variant,
    params: ModelParams,
    rng: np.random.Generator | None = None,
    augment: AugmentParams | None = None,
    modality_dropout: float = 0.0,
) -> TrainingSample:
    """Frame -> augmented inputs and targets. Without `rng` nothing random happens."""
    modalities = variant_modalities(variant)
    transform = None
    if rng is not None and augment is not None:
        transform = GlobalTransform.random(rng, augment)
    # Depth supervision from the keyframe scan alone: it is exact at the reference time (earlier
    # sweeps smear moving objects) and a third of the points to project.
    depth_source = np.zeros((0, cfg.point_cloud.features), np.float32)
    if frame.lidar is not None:
        depth_source = frame.lidar.points[: frame.lidar.keyframe_points]
    if rng is not None and modality_dropout > 0 and len(modalities) > 1:
        frame = drop_sensors(frame, _draw_dropout(rng, modality_dropout))
    inputs, cams = sample_inputs(frame, cfg, modalities, transform, rng, augment)
    h, w = cfg.camera.feature_size
    depth = np.full((len(cfg.camera.channels), h, w), -1, np.int64)
    if cams is not None:
        for i, (cam, pose) in enumerate(zip(cams.cameras, cams.cam_to_lidar, strict=True)):
            if cam is not None and pose is not None:
                depth[i] = depth_targets(depth_source, cam, pose, cfg.camera)
    return TrainingSample(
        frame.sample_token, inputs, box_targets(frame, cfg, params, transform), depth
    )


def _draw_dropout(rng: np.random.Generator, p: float) -> list[str]:
    """Each of LIDAR, all cameras, all radars dropped with probability p, never all three."""
    while True:
        drop = [name for name in (LIDAR_CHANNEL, "cameras", "radars") if rng.random() < p]
        if len(drop) < 3:
            return drop


def collate_training(
    samples: Sequence[TrainingSample], cfg: PipelineConfig
) -> tuple[BatchInputs, TargetBatch]:
    """Stack training samples; depth targets keep the present images in (sample, camera) order."""
    inputs = collate_inputs([s.inputs for s in samples], cfg)
    present = np.stack([s.inputs.camera_present for s in samples])
    depth = np.stack([s.depth for s in samples])[present]
    targets = TargetBatch(
        heatmap=torch.from_numpy(np.stack([s.targets.heatmap for s in samples])),
        regression=torch.from_numpy(np.stack([s.targets.regression for s in samples])),
        mask=torch.from_numpy(np.stack([s.targets.mask for s in samples])),
        velocity_valid=torch.from_numpy(np.stack([s.targets.velocity_valid for s in samples])),
        attribute=torch.from_numpy(np.stack([s.targets.attribute for s in samples])),
        depth=torch.from_numpy(depth) if len(depth) else None,
    )
    return inputs, targets


class FrameDataset(torch.utils.data.Dataset):
    """Training samples of a list of sample tokens, indexed by `(epoch, index)`.

    Augmentation is drawn from (seed, epoch, index), so a run is repeatable whatever the number
    of loader workers, and persistent workers need no per-epoch state. Up to `cache_frames`
    frames stay decoded in memory (per worker process): reading a frame (JPEG decoding, sweeps)
    costs about as much as preparing it.
    """

    def __init__(
        self,
        source: FrameSource,
        tokens: Sequence[str],
        cfg: PipelineConfig,
        variant: Variant,
        params: ModelParams,
        augment: AugmentParams | None = None,
        seed: int = 0,
        modality_dropout: float = 0.0,
        cache_frames: int = 0,
    ) -> None:
        self.source = source
        self.tokens = list(tokens)
        self.cfg = cfg
        self.variant = variant
        self.params = params
        self.augment = augment
        self.seed = seed
        self.modality_dropout = modality_dropout
        self.cache_frames = cache_frames
        self._cache: OrderedDict[int, Frame] = OrderedDict()

    def __len__(self) -> int:
        return len(self.tokens)

    def _frame(self, index: int) -> Frame:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        frame = self.source.frame(self.tokens[index])
        if self.cache_frames > 0:
            self._cache[index] = frame
            if len(self._cache) > self.cache_frames:
                self._cache.popitem(last=False)
        return frame

    def __getitem__(self, key: tuple[int, int]) -> TrainingSample:
        epoch, index = key
        rng = None
        if self.augment is not None or self.modality_dropout > 0:
            rng = np.random.default_rng([self.seed, epoch, index])
        return training_sample(
            self._frame(index),
            self.cfg,
            self.variant,
            self.params,
            rng,
            self.augment,
            self.modality_dropout,
        )
