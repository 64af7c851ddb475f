"""LIDAR-to-camera alignment score: unit cases and the real nuScenes keyframe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from pyquaternion import Quaternion

from calibration.camera import PinholeCamera
from calibration.checks import (
    detect_miscalibration,
    lidar_camera_alignment_score,
    lidar_depth_discontinuities,
    rotate_in_camera,
)
from calibration.transform import Transform
from fusion.errors import FusionError

CAMERAS = (
    "CAM_FRONT",
    "CAM_FRONT_LEFT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
# The six 1 degree rotation errors about the camera's x (pitch), y (yaw) and z (roll) axes.
ONE_DEGREE = [sign * np.eye(3)[axis] for axis in range(3) for sign in (1.0, -1.0)]


@dataclass(frozen=True, eq=False)
class CameraView:
    image: np.ndarray
    camera: PinholeCamera
    lidar_to_camera: Transform


@dataclass(frozen=True, eq=False)
class RealFrame:
    points: np.ndarray  # (N, 5) float32: x y z intensity ring, LIDAR frame
    views: dict[str, CameraView]


def _sensor_to_global(nusc, sd_token: str, frame: str) -> Transform:
    """Sensor -> ego at the sensor's own timestamp -> global, from the devkit tables."""
    sd = nusc.get("sample_data", sd_token)
    cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    ego = f"ego@{sd['timestamp']}"
    sensor_to_ego = Transform.from_translation_quaternion(
        cs["translation"], cs["rotation"], src=frame, dst=ego
    )
    ego_to_global = Transform.from_translation_quaternion(
        pose["translation"], pose["rotation"], src=ego, dst="global"
    )
    return ego_to_global @ sensor_to_ego


@pytest.fixture(scope="module")
def real(real_root: Path) -> RealFrame:
    from nuscenes.nuscenes import NuScenes

    nusc = NuScenes("v1.0-mini", str(real_root), verbose=False)
    sample = nusc.sample[0]
    lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    points = np.fromfile(real_root / lidar_sd["filename"], dtype=np.float32).reshape(-1, 5)
    lidar_to_global = _sensor_to_global(nusc, lidar_sd["token"], "LIDAR_TOP")
    views = {}
    for channel in CAMERAS:
        sd = nusc.get("sample_data", sample["data"][channel])
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        image = cv2.imread(str(real_root / sd["filename"]), cv2.IMREAD_COLOR)
        camera_to_global = _sensor_to_global(nusc, sd["token"], channel)
        views[channel] = CameraView(
            image=image,
            camera=PinholeCamera(np.array(cs["camera_intrinsic"]), sd["width"], sd["height"]),
            lidar_to_camera=camera_to_global.inverse() @ lidar_to_global,
        )
    return RealFrame(points=points, views=views)


def _score(real: RealFrame, channel: str, rotvec_deg: np.ndarray | None = None) -> float:
    view = real.views[channel]
    t = view.lidar_to_camera
    if rotvec_deg is not None:
        t = rotate_in_camera(t, rotvec_deg)
    return lidar_camera_alignment_score(
        real.points, view.image, view.camera, t, ring=real.points[:, 4]
    )


def test_lidar_to_camera_chain_matches_the_devkit(real: RealFrame, real_root: Path) -> None:
    """The extrinsic under test is the one the devkit's map_pointcloud_to_image uses."""
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.data_classes import LidarPointCloud

    nusc = NuScenes("v1.0-mini", str(real_root), verbose=False)
    sample = nusc.sample[0]
    lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    cam_sd = nusc.get("sample_data", sample["data"]["CAM_FRONT"])
    pc = LidarPointCloud.from_file(str(real_root / lidar_sd["filename"]))
    for sd, sign in ((lidar_sd, 1), (cam_sd, -1)):
        # The devkit's own steps: sensor -> ego -> global for the LIDAR, back for the camera.
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        pose = nusc.get("ego_pose", sd["ego_pose_token"])
        steps = [(cs["rotation"], cs["translation"]), (pose["rotation"], pose["translation"])]
        if sign < 0:
            for rot, trans in reversed(steps):
                pc.translate(-np.array(trans))
                pc.rotate(Quaternion(rot).rotation_matrix.T)
        else:
            for rot, trans in steps:
                pc.rotate(Quaternion(rot).rotation_matrix)
                pc.translate(np.array(trans))
    ours = real.views["CAM_FRONT"].lidar_to_camera.apply(real.points[:, :3])
    np.testing.assert_allclose(ours, pc.points[:3].T, atol=1e-4)


def test_true_front_calibration_beats_every_one_degree_error(real: RealFrame) -> None:
    true_score = _score(real, "CAM_FRONT")
    for rotvec in ONE_DEGREE:
        assert _score(real, "CAM_FRONT", rotvec) < 0.95 * true_score, rotvec


def test_true_calibration_beats_most_one_degree_errors_on_most_cameras(real: RealFrame) -> None:
    """Single-frame evidence is noisy (see the report): on each camera the true extrinsic must
    beat most of the six 1 degree errors, and on four of six cameras at least five of them."""
    wins = {}
    for channel in CAMERAS:
        true_score = _score(real, channel)
        wins[channel] = sum(_score(real, channel, r) < true_score for r in ONE_DEGREE)
    assert sum(w >= 5 for w in wins.values()) >= 4, wins
    assert sum(wins.values()) >= 24, wins  # of 36


def test_detect_miscalibration_passes_truth_and_flags_one_degree(real: RealFrame) -> None:
    view = real.views["CAM_FRONT"]
    ring = real.points[:, 4]
    report = detect_miscalibration(
        real.points, view.image, view.camera, view.lidar_to_camera, ring=ring
    )
    assert report.calibrated
    assert report.fraction_worse == 1.0
    assert report.perturbed_scores.shape == (6,) and report.perturbations_deg.shape == (6, 3)
    for rotvec in ONE_DEGREE:
        wrong = rotate_in_camera(view.lidar_to_camera, rotvec)
        flagged = detect_miscalibration(real.points, view.image, view.camera, wrong, ring=ring)
        assert not flagged.calibrated, rotvec
        assert flagged.score < report.score


def test_ring_free_fallback_agrees_on_the_front_camera(real: RealFrame) -> None:
    """Without ring indices beams are binned by elevation; the verdicts must not change."""
    view = real.views["CAM_FRONT"]
    report = detect_miscalibration(
        real.points[:, :3], view.image, view.camera, view.lidar_to_camera
    )
    assert report.calibrated
    wrong = rotate_in_camera(view.lidar_to_camera, [0.0, 1.0, 0.0])
    assert not detect_miscalibration(real.points[:, :3], view.image, view.camera, wrong).calibrated


def test_depth_edges_are_foreground_points_beside_a_jump() -> None:
    # One beam sweeping left to right: a pole at 10 m in front of a wall at 30 m.
    ranges = np.array([30.0, 30.0, 30.0, 10.0, 10.05, 10.0, 30.0, 30.0])
    azimuth = np.radians(np.arange(len(ranges)) * 0.2)
    points = np.stack([ranges * np.cos(azimuth), ranges * np.sin(azimuth), np.zeros(8)], 1)
    strength = lidar_depth_discontinuities(points, ring=np.zeros(8))
    np.testing.assert_allclose(strength[[3, 5]], np.sqrt(20.0), rtol=1e-3)
    assert np.all(strength[[0, 1, 2, 4, 6, 7]] == 0.0)
    # A missing return (gap wider than max_gap_deg) is not a neighbour.
    gap = azimuth.copy()
    gap[3:] += np.radians(5.0)
    points = np.stack([ranges * np.cos(gap), ranges * np.sin(gap), np.zeros(8)], 1)
    strength = lidar_depth_discontinuities(points, ring=np.zeros(8))
    assert strength[3] == 0.0 and strength[5] > 0.0
    # Foliage: ranges jump on both sides, so no surface edge.
    leaf = np.array([30.0, 12.0, 10.0, 25.0, 11.0, 30.0])
    az = np.radians(np.arange(6) * 0.2)
    pts = np.stack([leaf * np.cos(az), leaf * np.sin(az), np.zeros(6)], 1)
    assert lidar_depth_discontinuities(pts, ring=np.zeros(6))[4] == 0.0


def _slanted_poles(lateral: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of two leaning poles, 1 m wide, at 10 m and 15 m in front of a wall at 30 m.

    lateral, up: tangents of a ray (left / forward, up / forward). Leaning edges cross the
    beams at an angle, so both the pitch and the yaw of the extrinsic move them."""
    y10, z10 = lateral * 10.0, up * 10.0
    y15, z15 = lateral * 15.0, up * 15.0
    return np.abs(y10 - 1.0 - 0.5 * z10) <= 0.5, np.abs(y15 + 2.0 + 0.4 * z15) <= 0.5


def test_synthetic_scene_scores_highest_when_aligned() -> None:
    """Image and scan of the same scene: the true extrinsic wins, 1 degree errors lose."""
    camera = PinholeCamera(np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]), 640, 480)
    # LIDAR frame x forward, y left, z up; camera x right, y down, z forward.
    rot = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    lidar_to_camera = Transform.from_rotation_translation(rot, np.zeros(3), src="lidar", dst="cam")
    elevations = np.radians(np.linspace(-12.0, 12.0, 32))
    azimuths = np.radians(np.arange(-30.0, 30.0, 0.2))
    el, az = np.meshgrid(elevations, azimuths, indexing="ij")
    ring = np.repeat(np.arange(32), len(azimuths))
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    dirs = dirs.reshape(-1, 3)
    near, far = _slanted_poles(dirs[:, 1] / dirs[:, 0], dirs[:, 2] / dirs[:, 0])
    depth = np.where(near, 10.0, np.where(far, 15.0, 30.0))  # along LIDAR x (m)
    points = dirs / dirs[:, :1] * depth[:, None]
    v, u = np.mgrid[0:480, 0:640]
    near_px, far_px = _slanted_poles(-(u - 320) / 500.0, -(v - 240) / 500.0)
    image = np.full((480, 640), 60, dtype=np.uint8)
    image[near_px] = 200
    image[far_px] = 150
    truth = lidar_camera_alignment_score(points, image, camera, lidar_to_camera, ring=ring)
    assert truth > 0.0
    for rotvec in ONE_DEGREE:
        wrong = rotate_in_camera(lidar_to_camera, rotvec)
        assert lidar_camera_alignment_score(points, image, camera, wrong, ring=ring) < truth
    report = detect_miscalibration(points, image, camera, lidar_to_camera, ring=ring)
    assert report.calibrated
    wrong = rotate_in_camera(lidar_to_camera, [0.0, 1.0, 0.0])
    flagged = detect_miscalibration(points, image, camera, wrong, ring=ring)
    assert not flagged.calibrated
    # The best perturbation points back toward the truth: a yaw of -step.
    np.testing.assert_allclose(flagged.best_perturbation_deg, [0.0, -0.5, 0.0])


def test_rotate_in_camera_rotates_about_camera_axes() -> None:
    t = Transform.from_rotation_translation(np.eye(3), [1.0, 2.0, 3.0], src="lidar", dst="cam")
    r = rotate_in_camera(t, [0.0, 0.0, 90.0])
    assert (r.src, r.dst) == ("lidar", "cam")
    np.testing.assert_allclose(r.apply(np.zeros((1, 3))), [[-2.0, 1.0, 3.0]], atol=1e-12)
    assert rotate_in_camera(t, np.zeros(3)) is t


def test_bad_inputs_are_errors() -> None:
    camera = PinholeCamera(np.array([[500.0, 0, 32], [0, 500.0, 24], [0, 0, 1]]), 64, 48)
    t = Transform.identity("cam")
    points = np.ones((10, 3))
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    with pytest.raises(FusionError, match="uint8"):
        lidar_camera_alignment_score(points, image.astype(np.float32), camera, t)
    with pytest.raises(FusionError, match="camera is 48x64"):
        lidar_camera_alignment_score(points, image[:40], camera, t)
    with pytest.raises(FusionError, match=r"\(N, 3\+\)"):
        lidar_camera_alignment_score(np.ones((10, 2)), image, camera, t)
    with pytest.raises(FusionError, match="NaN"):
        lidar_camera_alignment_score(np.full((10, 3), np.nan), image, camera, t)
    with pytest.raises(FusionError, match="ring has 3 entries"):
        lidar_camera_alignment_score(points, image, camera, t, ring=np.zeros(3))
    with pytest.raises(FusionError, match="step_deg"):
        detect_miscalibration(points, image, camera, t, step_deg=0.0)
    with pytest.raises(FusionError, match="no LIDAR depth edge"):
        detect_miscalibration(points, image, camera, t)
