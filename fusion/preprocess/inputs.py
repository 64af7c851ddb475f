"""The per-frame stages of the detector, in one place: training, eval, latency and replay call them.

A `Frame` (from the offline reader or the online synchronizer) becomes the detector's inputs:
camera images resized, cropped and normalized with their network-input camera models, camera
geometry for `kernels.bev_pool`, LIDAR points voxelized into pillars, radar points rasterized.
`fusion.engines.runner.STAGES` names every stage of one frame, in order; its `Runner` times them.

Augmentation (training only) is applied consistently to every sensor's geometry: one global
transform of the LIDAR_TOP frame (rotation about z, scale, flips) moves LIDAR and radar points,
GT boxes and velocities and the camera frustums alike; each image is resized and cropped, and its
camera model (intrinsics) with it.

Camera geometry depends on the calibration and the image view only when the ego motion between
each camera's time and the LIDAR time is ignored (`camera_motion="ignore"`): then it is computed
once per rig and cached (`CameraGeometryCache`). With `camera_motion="compensate"` each camera is
placed where the ego was at its own time, which moves the frustums every frame on a moving car.
`benchmarks/replay.md` gives what each costs in accuracy and time.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera
from fusion.config import (
    CAMERA_CHANNELS,
    IMAGE_MEAN,
    IMAGE_STD,
    LIDAR_CHANNEL,
    RADAR_CHANNELS,
    AugmentParams,
    Modality,
    PipelineConfig,
    PointCloudConfig,
)
from fusion.errors import FusionError
from fusion.frame import Frame
from fusion.preprocess.geometry import camera_frustum_lidar
from kernels import BevPoolGeometry, inside_box, precompute_bev_pool, rasterize_radar, voxelize

CameraMotion = Literal["compensate", "ignore"]
DROP_GROUPS = ("cameras", "radars")


@dataclass(frozen=True, eq=False)
class Voxels:
    """Hard-voxelized LIDAR points of one sample (see `kernels.voxelize`).

    `features` (V, P, 5) float32 x y z intensity dt zero-padded; `coords` (V, 3) int32
    (ix, iy, iz); `num_points` (V,) int32."""

    features: NDArray[np.float32]
    coords: NDArray[np.int32]
    num_points: NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.coords)


@dataclass(frozen=True, eq=False)
class SampleInputs:
    """One sample, numpy. `images` (Ncam, 3, H, W) float32 normalized, zeros where a camera is
    absent; `camera_present` (Ncam,) bool; `camera_geometry` the `kernels.precompute_bev_pool`
    geometry of the present cameras in channel order (None when none is present); `voxels`
    None when LIDAR is absent; `radar_raster` (R, ny, nx) float32 (R =
    `cfg.radar.raster_channels`), None when radar is absent."""

    images: NDArray[np.float32]
    camera_present: NDArray[np.bool_]
    camera_geometry: BevPoolGeometry | None
    voxels: Voxels | None
    radar_raster: NDArray[np.float32] | None


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


def _normalize_lut() -> NDArray[np.float32]:
    """(3, 256) float32: uint8 value v of channel c -> (v / 255 - mean_c) / std_c."""
    v = np.arange(256, dtype=np.float32)[None] / np.float32(255.0)
    mean = np.asarray(IMAGE_MEAN, np.float32).reshape(3, 1)
    std = np.asarray(IMAGE_STD, np.float32).reshape(3, 1)
    return ((v - mean) / std).astype(np.float32)


_LUT = _normalize_lut()


def warp_image(
    image: NDArray[np.uint8], view: ImageView, cfg: PipelineConfig, *, one_step: bool = False
) -> NDArray[np.float32]:
    """(h, w, 3) uint8 RGB -> (3, H, W) float32 normalized network input (padding is 0).

    Default (training): resize the whole image (INTER_AREA when shrinking), then crop. With
    `one_step` (inference) and a scale of at least 1/2, only the output pixels are computed:
    one bilinear affine warp (the same pixel-centre mapping as cv2.resize) and a per-channel
    lookup table that normalizes and transposes to (3, H, W); at exactly 1/2 this equals the
    area resize, and a reduced-scale decode (`fusion.data.sensor_io.decode_camera_image`) brings the
    scale into [1/2, 1]. Below 1/2 bilinear would alias, so the default path runs."""
    h, w = cfg.camera.image_hw
    new_w, new_h = round(image.shape[1] * view.scale), round(image.shape[0] * view.scale)
    sx0, sy0 = max(view.x0, 0), max(view.y0, 0)
    dx0, dy0 = sx0 - view.x0, sy0 - view.y0
    cw, ch = min(new_w - sx0, w - dx0), min(new_h - sy0, h - dy0)
    out = np.zeros((3, h, w), np.float32)
    if one_step and view.scale >= 0.5:
        if cw <= 0 or ch <= 0:
            return out
        s = view.scale
        # dst = s * src + (s - 1) / 2 - x0 is cv2.resize's half-pixel mapping, then the crop
        m = np.array([[s, 0.0, 0.5 * (s - 1.0) - view.x0], [0.0, s, 0.5 * (s - 1.0) - view.y0]])
        warped = cv2.warpAffine(
            image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        region = warped[dy0 : dy0 + ch, dx0 : dx0 + cw]
        for c in range(3):
            out[c, dy0 : dy0 + ch, dx0 : dx0 + cw] = _LUT[c][region[..., c]]
        return out
    interp = cv2.INTER_AREA if view.scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    norm = (resized.astype(np.float32) / 255.0 - np.float32(IMAGE_MEAN)) / np.float32(IMAGE_STD)
    if cw > 0 and ch > 0:
        out[:, dy0 : dy0 + ch, dx0 : dx0 + cw] = norm[sy0 : sy0 + ch, sx0 : sx0 + cw].transpose(
            2, 0, 1
        )
    return out


@dataclass(frozen=True, eq=False)
class CameraInputs:
    """Network-input images of all configured cameras, and the geometry of the present ones.

    `cam_to_lidar`: LIDAR_TOP(t_ref) <- camera(t_cam) through both ego poses (the ego moves
    between the two times); `cam_to_lidar_rig`: the same by calibration alone (one ego pose),
    which is what stays fixed on a moving car. `views` the resize/crop of each image."""

    images: NDArray[np.float32]  # (Ncam, 3, H, W), zeros where absent
    present: NDArray[np.bool_]  # (Ncam,)
    cameras: tuple[PinholeCamera | None, ...]  # network-input camera models
    cam_to_lidar: tuple[NDArray[np.float64] | None, ...]  # (4, 4) LIDAR(t_ref) <- camera(t_cam)
    cam_to_lidar_rig: tuple[NDArray[np.float64] | None, ...]  # (4, 4) by calibration only
    views: tuple[ImageView | None, ...] = ()


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
    rig: list[NDArray[np.float64] | None] = [None] * n
    views: list[ImageView | None] = [None] * n
    lidar_from_ego = frame.reference.sensor_to_ego.inverse().matrix
    for i, ch in enumerate(cfg.camera.channels):
        data = frame.cameras.get(ch)
        if data is None:
            continue
        view = image_view(data.image.shape[1], data.image.shape[0], cfg, rng, params)
        # inference (no augmentation) takes the one-step warp; training keeps the area resize
        images[i] = warp_image(data.image, view, cfg, one_step=rng is None)
        cams[i] = view_camera(data.camera, view, cfg)
        poses[i] = frame.sensor_to_lidar(ch).matrix
        rig[i] = lidar_from_ego @ data.pose.sensor_to_ego.matrix
        views[i] = view
        present[i] = True
    return CameraInputs(images, present, tuple(cams), tuple(poses), tuple(rig), tuple(views))


def camera_frustums(
    cams: CameraInputs,
    cfg: PipelineConfig,
    transform: GlobalTransform | None = None,
    motion: CameraMotion = "compensate",
) -> NDArray[np.float32] | None:
    """(Npresent, D, h, w, 3) frustum points of the present cameras in the (augmented)
    LIDAR_TOP frame, or None when no camera is present. `motion` picks the camera poses:
    time-compensated (`compensate`) or by calibration alone (`ignore`)."""
    poses = cams.cam_to_lidar if motion == "compensate" else cams.cam_to_lidar_rig
    pts = [
        camera_frustum_lidar(cam, pose, cfg.camera)
        for cam, pose in zip(cams.cameras, poses, strict=True)
        if cam is not None and pose is not None
    ]
    if not pts:
        return None
    out = np.stack(pts)
    return out if transform is None else transform.frustum(out)


def camera_geometry(
    frustums: NDArray[np.float32] | None, cfg: PipelineConfig
) -> BevPoolGeometry | None:
    """`kernels.precompute_bev_pool` geometry of the frustums on the BEV grid (or None)."""
    if frustums is None:
        return None
    return precompute_bev_pool(frustums, cfg.bev.bev_range, cfg.bev.cell_size)


class CameraGeometryCache:
    """Camera geometry by rig: calibration (camera and LIDAR extrinsics, intrinsics) and image
    view of every present camera. With `motion="compensate"` the key also holds the
    time-compensated poses, so a moving car misses every frame (that is the price of it).

    At most `size` entries (least recently used dropped); `builds` counts computations."""

    def __init__(self, cfg: PipelineConfig, motion: CameraMotion = "ignore", size: int = 8):
        if size < 1:
            raise ValueError("cache size must be >= 1")
        self.cfg = cfg
        self.motion: CameraMotion = motion
        self.size = size
        self.builds = 0
        self._entries: OrderedDict[str, BevPoolGeometry | None] = OrderedDict()

    def key(self, cams: CameraInputs) -> str:
        h = hashlib.sha1(self.motion.encode())
        poses = cams.cam_to_lidar if self.motion == "compensate" else cams.cam_to_lidar_rig
        for cam, pose in zip(cams.cameras, poses, strict=True):
            if cam is None or pose is None:
                h.update(b"-")
                continue
            h.update(np.ascontiguousarray(cam.intrinsics, np.float64).tobytes())
            h.update(np.ascontiguousarray(pose, np.float64).tobytes())
            h.update(f"{cam.width}x{cam.height}".encode())
        return h.hexdigest()

    def get(self, cams: CameraInputs) -> BevPoolGeometry | None:
        key = self.key(cams)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        geometry = camera_geometry(camera_frustums(cams, self.cfg, motion=self.motion), self.cfg)
        self.builds += 1
        self._entries[key] = geometry
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return geometry


# -- point clouds -------------------------------------------------------------------------------


def ego_filter_mask(xyz: NDArray[np.floating], cfg: PointCloudConfig) -> NDArray[np.bool_]:
    """(N,) True for the points (N, >=3) x y z in m, LIDAR_TOP frame, that the ego filter
    removes: inside `cfg.ego_box` with `cfg.ego_filter == "box"`, none with `none`."""
    if cfg.ego_filter == "none":
        return np.zeros(len(xyz), bool)
    return inside_box(xyz, cfg.ego_box)


def ego_box(cfg: PointCloudConfig) -> tuple[float, ...] | None:
    """The box `ego_filter_mask` removes, None with `ego_filter == "none"`."""
    return None if cfg.ego_filter == "none" else tuple(cfg.ego_box)


def without_ego_returns(points: NDArray[np.float32], cfg: PipelineConfig) -> NDArray[np.float32]:
    """(N, C) LIDAR points (x y z first, LIDAR_TOP frame) without those in the ego box: one
    filter for real and synthetic clouds, training and inference (`PointCloudConfig.ego_box`)."""
    drop = ego_filter_mask(points, cfg.point_cloud)
    return points if not drop.any() else points[~drop]


def lidar_voxels(points: Any, cfg: PipelineConfig, exclude: Any = None) -> Voxels:
    """(N, 5) LIDAR points -> hard pillars with `kernels.voxelize`, without the points of the
    box `exclude` (the ego filter in the kernel's pass: `ego_box`). Host (numpy) points give
    numpy pillars; device points (a CUDA tensor, a numba device array) are voxelized by the CUDA
    kernel and the pillars stay on the device, in the points' kind."""
    pc = cfg.point_cloud
    host = isinstance(points, np.ndarray)
    v = voxelize(
        np.ascontiguousarray(points, dtype=np.float32) if host else points,
        pc.voxel_size,
        pc.point_range,
        pc.max_points_per_voxel,
        pc.max_voxels,
        mode="hard",
        exclude=exclude,
    )
    if not host:
        return Voxels(v.features, v.coords, v.num_points)
    return Voxels(
        np.asarray(v.features), np.asarray(v.coords, np.int32), np.asarray(v.num_points, np.int32)
    )


def radar_raster(points: Any, cfg: PipelineConfig) -> Any:
    """(N, 7) radar points -> (`cfg.radar.raster_channels`, ny, nx) raster with
    `kernels.rasterize_radar` (numpy for host points; for device points, on the device)."""
    if not isinstance(points, np.ndarray):
        return rasterize_radar(points, cfg.bev.bev_range, cfg.bev.cell_size)
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


def _no_lap(stage: str) -> None:
    pass


def sample_inputs(
    frame: Frame,
    cfg: PipelineConfig,
    modalities: Sequence[Modality],
    transform: GlobalTransform | None = None,
    rng: np.random.Generator | None = None,
    params: AugmentParams | None = None,
    *,
    geometry_cache: CameraGeometryCache | None = None,
    camera_motion: CameraMotion = "compensate",
    lap: Callable[[str], None] = _no_lap,
    points_to: Callable[[NDArray[np.float32]], Any] | None = None,
) -> tuple[SampleInputs, CameraInputs | None]:
    """Everything a detector of `modalities` reads from a frame (sensors absent from the
    frame are absent from the inputs): the pre-processing stages of training and inference.

    Inference passes a `geometry_cache` (its own `motion` applies); training computes the
    geometry of each augmented sample with `camera_motion`. `lap(stage)` is called after each
    stage (`images`, `camera_geometry`, `voxelize`, `radar_raster`) for timing. `points_to`
    moves the (N, C) float32 point clouds before voxelize and rasterize (the runner's device
    path uploads them, so the kernels run on the GPU and their outputs stay there)."""
    if geometry_cache is not None and transform is not None:
        raise ValueError("the geometry cache holds unaugmented geometry: pass no transform")
    n_cam = len(cfg.camera.channels)
    h, w = cfg.camera.image_hw
    images = np.zeros((n_cam, 3, h, w), np.float32)
    present = np.zeros(n_cam, bool)
    geometry = None
    cams = None
    if "camera" in modalities:
        cams = camera_inputs(frame, cfg, rng, params)
        images, present = cams.images, cams.present
        lap("images")
        if geometry_cache is not None:
            geometry = geometry_cache.get(cams)
        else:
            geometry = camera_geometry(camera_frustums(cams, cfg, transform, camera_motion), cfg)
        lap("camera_geometry")
    voxels = None
    if "lidar" in modalities and frame.lidar is not None:
        pts, exclude = frame.lidar.points, ego_box(cfg.point_cloud)
        if transform is not None:  # the ego filter before augmentation moves the points
            pts, exclude = transform.points(without_ego_returns(pts, cfg)), None
        if points_to is not None:
            pts = points_to(np.ascontiguousarray(pts, np.float32))
        voxels = lidar_voxels(pts, cfg, exclude)  # else the ego filter in voxelize's pass
        lap("voxelize")
    raster = None
    if "radar" in modalities and frame.radars:
        raster = frame_radar_raster(frame, cfg, transform, points_to)
        lap("radar_raster")
    return SampleInputs(images, present, geometry, voxels, raster), cams


def frame_radar_raster(
    frame: Frame,
    cfg: PipelineConfig,
    transform: GlobalTransform | None = None,
    points_to: Callable[[NDArray[np.float32]], Any] | None = None,
) -> Any:
    """The radar raster of a frame's radars (`radar_raster`; None without radars), after the
    augmentation `transform`; `points_to` as `sample_inputs`'."""
    if not frame.radars:
        return None
    pts = radar_points(frame, cfg)
    if transform is not None:
        pts = transform.points(pts)
        pts[:, 4:6] = transform.vectors_2d(pts[:, 4:6])
    if points_to is not None:
        pts = points_to(np.ascontiguousarray(pts, np.float32))
    return radar_raster(pts, cfg)
