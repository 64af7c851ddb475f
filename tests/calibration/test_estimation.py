"""Checkerboard calibration against boards rendered with known intrinsics, distortion and pose."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.camera import PinholeCamera
from calibration.estimation import (
    CheckerboardCalibration,
    board_pose,
    calibrate_from_checkerboards,
    detect_corners,
)
from calibration.synthetic_board import board_corners, random_board_poses, render_checkerboard
from calibration.transform import Transform
from fusion.errors import FusionError

PATTERN = (9, 6)
SQUARE_M = 0.08
# nuScenes CAM_FRONT intrinsics (1600x900), rendered at half size to keep the test fast.
CAM_FRONT_K = np.array([[1266.417, 0.0, 816.267], [0.0, 1266.417, 491.507], [0.0, 0.0, 1.0]])
CAMERA = PinholeCamera(CAM_FRONT_K, 1600, 900).scaled(0.5)


def rotation_error_deg(a: Transform, b: Transform) -> float:
    cos = (np.trace(a.rotation.T @ b.rotation) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


@pytest.fixture(scope="module")
def poses() -> list[Transform]:
    return random_board_poses(CAMERA, PATTERN, SQUARE_M, 12, seed=3)


@pytest.fixture(scope="module")
def calibration(poses: list[Transform]) -> CheckerboardCalibration:
    images = [
        render_checkerboard(CAMERA, p, PATTERN, SQUARE_M, supersample=3, seed=i)
        for i, p in enumerate(poses)
    ]
    return calibrate_from_checkerboards(images, PATTERN, SQUARE_M)


def test_recovers_intrinsics(calibration: CheckerboardCalibration, poses: list[Transform]) -> None:
    cam = calibration.camera
    assert (cam.width, cam.height) == (CAMERA.width, CAMERA.height)
    assert abs(cam.fx / CAMERA.fx - 1.0) < 0.005
    assert abs(cam.fy / CAMERA.fy - 1.0) < 0.005
    assert abs(cam.cx - CAMERA.cx) < 3.0
    assert abs(cam.cy - CAMERA.cy) < 3.0
    assert calibration.rms_px < 0.3
    assert calibration.num_views == 12 and calibration.skipped_views == ()
    # A pinhole was rendered: the estimated lens barely bends points inside the image.
    assert max_distortion_difference_px(cam, calibration.distortion, np.zeros(5), poses) < 0.5


def test_per_view_poses_match_rendered_poses(
    calibration: CheckerboardCalibration, poses: list[Transform]
) -> None:
    assert len(calibration.board_to_camera) == len(poses)
    for truth, est in zip(poses, calibration.board_to_camera, strict=True):
        assert (est.src, est.dst) == ("board", "camera")
        assert np.linalg.norm(est.translation - truth.translation) < 0.02
        assert rotation_error_deg(est, truth) < 0.5


def max_distortion_difference_px(
    camera: PinholeCamera,
    dist_a: np.ndarray,
    dist_b: np.ndarray,
    poses: list[Transform],
) -> float:
    """Largest pixel distance between two lens models over the board corners of `poses`: the
    part of the field the boards covered (outside it, k3 is an unobserved extrapolation)."""
    rays = np.concatenate([p.apply(board_corners(PATTERN, SQUARE_M)) for p in poses])
    rvec = tvec = np.zeros(3)
    a, _ = cv2.projectPoints(rays, rvec, tvec, camera.intrinsics, dist_a)
    b, _ = cv2.projectPoints(rays, rvec, tvec, camera.intrinsics, dist_b)
    return float(np.linalg.norm(a - b, axis=-1).max())


def test_recovers_lens_distortion(poses: list[Transform]) -> None:
    truth = np.array([-0.2, 0.05, 0.0, 0.0, 0.0])
    images = [
        render_checkerboard(CAMERA, p, PATTERN, SQUARE_M, distortion=truth, supersample=3, seed=i)
        for i, p in enumerate(poses[:9])
    ]
    result = calibrate_from_checkerboards(images, PATTERN, SQUARE_M)
    assert abs(result.camera.fx / CAMERA.fx - 1.0) < 0.005
    assert abs(result.camera.fy / CAMERA.fy - 1.0) < 0.005
    assert abs(result.distortion[0] - truth[0]) < 0.02
    # k2 and k3 trade off against each other; the lens mapping itself must agree.
    assert max_distortion_difference_px(result.camera, result.distortion, truth, poses[:9]) < 0.5
    # Ignoring the distortion would be off by many pixels there.
    assert max_distortion_difference_px(CAMERA, np.zeros(5), truth, poses[:9]) > 5.0


def test_board_pose_matches_rendered_pose(poses: list[Transform]) -> None:
    for i, truth in enumerate(poses[:4]):
        image = render_checkerboard(CAMERA, truth, PATTERN, SQUARE_M, seed=100 + i)
        est = board_pose(image, CAMERA, PATTERN, SQUARE_M)
        assert (est.src, est.dst) == ("board", "camera")
        assert np.linalg.norm(est.translation - truth.translation) < 0.005
        assert rotation_error_deg(est, truth) < 0.2


@pytest.mark.parametrize("turn_deg", [90.0, 180.0, 270.0])
def test_board_pose_is_unique_when_the_board_is_turned(turn_deg: float) -> None:
    """A board turned in its plane must give the turned pose, not a symmetric twin."""
    turn = np.radians(turn_deg)
    rot = np.array(
        [[np.cos(turn), -np.sin(turn), 0.0], [np.sin(turn), np.cos(turn), 0.0], [0.0, 0.0, 1.0]]
    )
    tilt = cv2.Rodrigues(np.radians([15.0, -20.0, 0.0]))[0]
    centre = board_corners(PATTERN, SQUARE_M).mean(axis=0)
    r = tilt @ rot
    truth = Transform.from_rotation_translation(
        r, np.array([0.0, 0.0, 2.0]) - r @ centre, src="board", dst="camera"
    )
    image = render_checkerboard(CAMERA, truth, PATTERN, SQUARE_M)
    est = board_pose(image, CAMERA, PATTERN, SQUARE_M)
    assert rotation_error_deg(est, truth) < 0.2
    assert np.linalg.norm(est.translation - truth.translation) < 0.005


def test_images_without_a_board_are_skipped(poses: list[Transform]) -> None:
    boards = [render_checkerboard(CAMERA, p, PATTERN, SQUARE_M) for p in poses[:4]]
    blank = np.full((CAMERA.height, CAMERA.width), 128, dtype=np.uint8)
    result = calibrate_from_checkerboards(
        [boards[0], blank, boards[1], boards[2], blank, boards[3]], PATTERN, SQUARE_M
    )
    assert result.used_views == (0, 2, 3, 5)
    assert result.skipped_views == (1, 4)
    assert result.num_views == len(result.board_to_camera) == 4


def test_too_few_views_is_an_error(poses: list[Transform]) -> None:
    boards = [render_checkerboard(CAMERA, p, PATTERN, SQUARE_M) for p in poses[:2]]
    blank = np.full((CAMERA.height, CAMERA.width, 3), 128, dtype=np.uint8)
    with pytest.raises(FusionError, match="found in 2 of 4 images"):
        calibrate_from_checkerboards([boards[0], blank, boards[1], blank], PATTERN, SQUARE_M)
    with pytest.raises(FusionError, match="no images"):
        calibrate_from_checkerboards([], PATTERN, SQUARE_M)


def test_bad_images_are_errors(poses: list[Transform]) -> None:
    board = render_checkerboard(CAMERA, poses[0], PATTERN, SQUARE_M)
    with pytest.raises(FusionError, match="uint8"):
        calibrate_from_checkerboards([board.astype(np.float32)] * 3, PATTERN, SQUARE_M)
    with pytest.raises(FusionError, match="same size"):
        calibrate_from_checkerboards([board, board[:100]], PATTERN, SQUARE_M)
    with pytest.raises(FusionError, match="not found"):
        board_pose(np.zeros_like(board), CAMERA, PATTERN, SQUARE_M)
    with pytest.raises(FusionError, match="ambiguous"):
        board_pose(board, CAMERA, (8, 6), SQUARE_M)
    with pytest.raises(FusionError, match="uint8"):
        board_pose(board.astype(np.int32), CAMERA, PATTERN, SQUARE_M)


def test_colour_image_gives_the_same_corners(poses: list[Transform]) -> None:
    grey = render_checkerboard(CAMERA, poses[0], PATTERN, SQUARE_M)
    corners = detect_corners(grey, PATTERN)
    colour = detect_corners(np.repeat(grey[:, :, None], 3, axis=2), PATTERN)
    assert corners is not None and colour is not None
    assert corners.shape == (PATTERN[0] * PATTERN[1], 2)
    np.testing.assert_allclose(colour, corners, atol=1e-3)
