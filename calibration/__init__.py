"""Frames, rigid transforms, camera models, calibration checks and estimation."""

from calibration.camera import PinholeCamera
from calibration.quaternion import (
    matrix_to_quaternion,
    quaternion_from_yaw,
    quaternion_slerp,
    quaternion_to_matrix,
    yaw_from_matrix,
    yaw_from_quaternion,
)
from calibration.transform import FrameMismatchError, Transform

__all__ = [
    "FrameMismatchError",
    "PinholeCamera",
    "Transform",
    "matrix_to_quaternion",
    "quaternion_from_yaw",
    "quaternion_slerp",
    "quaternion_to_matrix",
    "yaw_from_matrix",
    "yaw_from_quaternion",
]
