"""Frames, rigid transforms, camera models, calibration checks and estimation."""

from calibration.camera import PinholeCamera
from calibration.checks import (
    MiscalibrationReport,
    detect_miscalibration,
    lidar_camera_alignment_score,
)
from calibration.estimation import CheckerboardCalibration, board_pose, calibrate_from_checkerboards
from calibration.quaternion import (
    matrix_to_quaternion,
    quaternion_from_rotvec,
    quaternion_from_yaw,
    quaternion_multiply,
    quaternion_slerp,
    quaternion_to_matrix,
    yaw_from_matrix,
    yaw_from_quaternion,
)
from calibration.synthetic_board import random_board_poses, render_checkerboard
from calibration.transform import FrameMismatchError, Transform

__all__ = [
    "CheckerboardCalibration",
    "FrameMismatchError",
    "MiscalibrationReport",
    "PinholeCamera",
    "Transform",
    "board_pose",
    "calibrate_from_checkerboards",
    "detect_miscalibration",
    "lidar_camera_alignment_score",
    "matrix_to_quaternion",
    "quaternion_from_rotvec",
    "quaternion_from_yaw",
    "quaternion_multiply",
    "quaternion_slerp",
    "quaternion_to_matrix",
    "random_board_poses",
    "render_checkerboard",
    "yaw_from_matrix",
    "yaw_from_quaternion",
]
