"""LIDAR-to-camera calibration checks: depth edges of the scan against edges of the image.

A well calibrated rig projects the LIDAR's depth discontinuities (the outlines of poles, cars,
walls) onto intensity edges of the image. Following Levinson & Thrun (RSS 2013, "Automatic
online calibration of cameras and lasers"), the score sums, over the projected discontinuity
points, their discontinuity strength times the image's closeness to an edge. Rotating the
extrinsic away from the truth slides the depth edges off the image edges and lowers the score;
`detect_miscalibration` checks that the given extrinsic is a local maximum of that score.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.camera import PinholeCamera
from calibration.quaternion import quaternion_to_matrix
from calibration.transform import Transform
from fusion.errors import FusionError


@dataclass(frozen=True)
class AlignmentParams:
    """Parameters of the alignment score.

    min_jump_m: a point is a depth edge when a scan neighbour is at least this much farther (m).
    max_step_m: ... and its neighbour on the other side is within this range (m): the edge of a
        surface, not a leaf of a tree, whose ranges jump everywhere.
    max_gap_deg: neighbours farther apart in azimuth than this (deg) are not compared (dropouts).
    elevation_bin_deg: without ring indices, points are grouped into beams by elevation (deg).
    blur_px: Gaussian blur sigma before Canny (px); damps JPEG block edges.
    canny_low, canny_high: Canny hysteresis thresholds on 8-bit grey levels.
    edge_decay_px: closeness to an edge is exp(-distance / edge_decay_px) (px).
    """

    min_jump_m: float = 0.5
    max_step_m: float = 0.2
    max_gap_deg: float = 1.0
    elevation_bin_deg: float = 0.4
    blur_px: float = 1.5
    canny_low: int = 40
    canny_high: int = 120
    edge_decay_px: float = 4.0


@dataclass(frozen=True, eq=False)
class MiscalibrationReport:
    """Result of `detect_miscalibration`.

    score: the alignment score of the given extrinsic (higher is better).
    perturbations_deg: (K, 3) rotation vectors (deg) about the camera's x, y, z axes
        (pitch, yaw, roll) applied on the camera side of the extrinsic.
    perturbed_scores: (K,) the score of each perturbed extrinsic.
    fraction_worse: share of perturbations that score strictly lower than the given extrinsic.
    calibrated: True when every perturbation scores lower (the extrinsic is a local optimum).
    """

    score: float
    perturbations_deg: NDArray[np.float64]
    perturbed_scores: NDArray[np.float64]
    fraction_worse: float
    calibrated: bool

    @property
    def best_perturbation_deg(self) -> NDArray[np.float64]:
        """The (3,) perturbation (deg) with the highest score: the direction to correct in."""
        return self.perturbations_deg[int(np.argmax(self.perturbed_scores))]


def _check_points(points_lidar: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(points_lidar)
    if p.ndim != 2 or p.shape[1] < 3:
        raise FusionError(f"LIDAR points must be (N, 3+), got shape {p.shape}")
    xyz = p[:, :3].astype(np.float64)
    if not np.all(np.isfinite(xyz)):
        raise FusionError("LIDAR points contain NaN or Inf coordinates")
    return xyz


def _check_image(image: ArrayLike) -> NDArray[np.uint8]:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise FusionError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.ndim == 2:
        return img
    raise FusionError(f"image must be (H, W) or (H, W, 3), got shape {img.shape}")


def _edge_jump(
    rng: NDArray[np.float64],
    before: NDArray[np.int64],
    after: NDArray[np.int64],
    params: AlignmentParams,
) -> NDArray[np.float64]:
    """(N,) how much farther (m) one neighbour is while the opposite one lies on the point's
    own surface (within max_step_m); 0 elsewhere. Neighbour index -1 means none."""
    to_before = np.where(before >= 0, rng[before] - rng, np.nan)
    to_after = np.where(after >= 0, rng[after] - rng, np.nan)
    smooth_before = np.abs(to_before) <= params.max_step_m  # NaN compares False
    smooth_after = np.abs(to_after) <= params.max_step_m
    return np.maximum(
        np.where(smooth_before, np.nan_to_num(to_after, nan=0.0), 0.0),
        np.where(smooth_after, np.nan_to_num(to_before, nan=0.0), 0.0),
    )


def _beam_neighbours(
    azimuth: NDArray[np.float64], beam: NDArray[np.int64], max_gap: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Indices (N,) of each point's left and right neighbour in azimuth on its own beam (-1:
    none, or more than max_gap rad away: a dropped return is not a neighbour)."""
    n = azimuth.shape[0]
    left = np.full(n, -1)
    right = np.full(n, -1)
    order = np.lexsort((azimuth, beam))
    a = azimuth[order]
    linked = (beam[order][1:] == beam[order][:-1]) & (np.diff(a) <= max_gap)
    right[order[:-1][linked]] = order[1:][linked]
    left[order[1:][linked]] = order[:-1][linked]
    return left, right


def lidar_depth_discontinuities(
    points_lidar: ArrayLike,
    ring: ArrayLike | None = None,
    params: AlignmentParams = AlignmentParams(),
) -> NDArray[np.float64]:
    """Depth-edge strength (N,) of each LIDAR point, in sqrt(m); 0 for non-edge points.

    Points are ordered by azimuth along each beam: `ring` (N,) integer beam indices, or beams
    binned by elevation angle when None. A point is a foreground depth edge when one scan
    neighbour is at least `min_jump_m` farther while the opposite one continues its surface
    (within `max_step_m`); its strength is sqrt(jump), as in Levinson & Thrun. Computed in the
    LIDAR frame, so it does not depend on the extrinsic.
    """
    xyz = _check_points(points_lidar)
    n = xyz.shape[0]
    rng = np.linalg.norm(xyz, axis=1)
    azimuth = np.arctan2(xyz[:, 1], xyz[:, 0])
    if ring is None:
        elevation = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
        beam = np.round(elevation / params.elevation_bin_deg).astype(np.int64)
    else:
        beam = np.asarray(ring).astype(np.int64).reshape(-1)
        if beam.shape[0] != n:
            raise FusionError(f"ring has {beam.shape[0]} entries for {n} points")
    left, right = _beam_neighbours(azimuth, beam, np.radians(params.max_gap_deg))
    jump = _edge_jump(rng, left, right, params)
    return np.where(jump >= params.min_jump_m, np.sqrt(np.maximum(jump, 0.0)), 0.0)


def image_edge_closeness(
    image: ArrayLike, params: AlignmentParams = AlignmentParams()
) -> NDArray[np.float64]:
    """(H, W) float64 in (0, 1]: exp(-distance to the nearest Canny edge / edge_decay_px).

    `image` is (H, W) or (H, W, 3) BGR uint8."""
    grey = _check_image(image)
    if params.blur_px > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), params.blur_px)
    edges = cv2.Canny(grey, params.canny_low, params.canny_high)
    # distanceTransform measures the distance to the nearest zero pixel: make edges the zeros.
    dist = cv2.distanceTransform(np.where(edges > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    return np.exp(-dist.astype(np.float64) / params.edge_decay_px)


@dataclass(frozen=True, eq=False)
class _EdgeScene:
    """What the score needs, computed once per scan and image: depth-edge points (M, 3) in
    the LIDAR frame (m), their strengths (M,) and the image's edge closeness (H, W)."""

    xyz: NDArray[np.float64]
    strength: NDArray[np.float64]
    closeness: NDArray[np.float64]


def _prepare(
    points_lidar: ArrayLike,
    image: ArrayLike,
    camera: PinholeCamera,
    lidar_to_camera: Transform,
    ring: ArrayLike | None,
    params: AlignmentParams,
) -> _EdgeScene:
    shape = np.shape(image)
    if len(shape) < 2 or (shape[0], shape[1]) != (camera.height, camera.width):
        raise FusionError(
            f"image is {shape[:2]} (H, W) but the camera is {camera.height}x{camera.width}"
        )
    if not isinstance(lidar_to_camera, Transform):
        raise FusionError("lidar_to_camera must be a calibration.Transform")
    strength = lidar_depth_discontinuities(points_lidar, ring, params)
    edge = strength > 0
    return _EdgeScene(
        xyz=_check_points(points_lidar)[edge],
        strength=strength[edge],
        closeness=image_edge_closeness(image, params),
    )


def _score(scene: _EdgeScene, camera: PinholeCamera, lidar_to_camera: Transform) -> float:
    uv, _, valid = camera.project(lidar_to_camera.apply(scene.xyz))
    if not np.any(valid):
        return 0.0
    h, w = scene.closeness.shape
    cols = np.clip(np.round(uv[valid, 0]).astype(np.int64), 0, w - 1)
    rows = np.clip(np.round(uv[valid, 1]).astype(np.int64), 0, h - 1)
    return float(np.sum(scene.strength[valid] * scene.closeness[rows, cols]))


def lidar_camera_alignment_score(
    points_lidar: ArrayLike,
    image: ArrayLike,
    camera: PinholeCamera,
    lidar_to_camera: Transform,
    *,
    ring: ArrayLike | None = None,
    params: AlignmentParams = AlignmentParams(),
) -> float:
    """How well LIDAR depth edges land on image edges; higher is better aligned.

    points_lidar: (N, 3+) points in the LIDAR frame (m); extra columns are ignored.
    image: (H, W, 3) BGR or (H, W) uint8 image of `camera`, taken with the scan.
    lidar_to_camera: maps LIDAR points (at the scan time) to the camera frame (at the image time).
    ring: optional (N,) beam index per point (column 4 of a nuScenes .pcd.bin).
    Returns the sum over projected depth-edge points of sqrt(jump m) * exp(-edge distance px /
    edge_decay_px). Only comparable between extrinsics for the same scan and image.
    """
    scene = _prepare(points_lidar, image, camera, lidar_to_camera, ring, params)
    return _score(scene, camera, lidar_to_camera)


def rotate_in_camera(lidar_to_camera: Transform, rotvec_deg: ArrayLike) -> Transform:
    """The extrinsic followed by a small rotation about the camera's own axes.

    rotvec_deg: (3,) rotation vector in degrees about camera x (pitch), y (yaw), z (roll)."""
    rv = np.radians(np.asarray(rotvec_deg, dtype=np.float64).reshape(3))
    angle = float(np.linalg.norm(rv))
    if angle == 0.0:
        return lidar_to_camera
    axis = rv / angle
    q = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
    delta = Transform.from_rotation_translation(
        quaternion_to_matrix(q), np.zeros(3), src=lidar_to_camera.dst, dst=lidar_to_camera.dst
    )
    return delta @ lidar_to_camera


def detect_miscalibration(
    points_lidar: ArrayLike,
    image: ArrayLike,
    camera: PinholeCamera,
    lidar_to_camera: Transform,
    *,
    step_deg: float = 0.5,
    ring: ArrayLike | None = None,
    params: AlignmentParams = AlignmentParams(),
) -> MiscalibrationReport:
    """Score the extrinsic against itself rotated by +-step_deg about each camera axis.

    A correct calibration is a local maximum of the alignment score: every perturbation scores
    lower. If any perturbation scores higher, the extrinsic is reported as miscalibrated and
    `best_perturbation_deg` points toward the better alignment. Arguments as in
    `lidar_camera_alignment_score`; step_deg in degrees.
    """
    if not step_deg > 0:
        raise FusionError(f"step_deg must be positive, got {step_deg}")
    scene = _prepare(points_lidar, image, camera, lidar_to_camera, ring, params)
    _, _, in_view = camera.project(lidar_to_camera.apply(scene.xyz))
    if not np.any(in_view):
        # Every score would be 0: no evidence either way, which is not a verdict.
        raise FusionError("no LIDAR depth edge projects into the image; cannot judge alignment")
    score = _score(scene, camera, lidar_to_camera)
    perturbations = np.concatenate([np.eye(3), -np.eye(3)]) * step_deg
    perturbed = np.array(
        [_score(scene, camera, rotate_in_camera(lidar_to_camera, p)) for p in perturbations]
    )
    worse = perturbed < score
    return MiscalibrationReport(
        score=score,
        perturbations_deg=perturbations,
        perturbed_scores=perturbed,
        fraction_worse=float(np.mean(worse)),
        calibrated=bool(np.all(worse)),
    )
