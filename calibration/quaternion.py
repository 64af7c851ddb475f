"""Unit quaternions in (w, x, y, z) order, as nuScenes and pyquaternion store them."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray


def quaternion_to_matrix(q: ArrayLike) -> NDArray[np.float64]:
    """(4,) quaternion (w, x, y, z), normalized here -> (3, 3) rotation matrix, float64."""
    # the products on plain floats (the same IEEE doubles as numpy scalars, a few times faster:
    # every pose message and pose lookup of a replay makes one)
    w, x, y, z = (np.asarray(q, dtype=np.float64) / np.linalg.norm(q)).tolist()
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(rot: ArrayLike) -> NDArray[np.float64]:
    """(3, 3) rotation matrix -> (4,) unit quaternion (w, x, y, z) with w >= 0."""
    m = np.asarray(rot, dtype=np.float64).tolist()  # plain floats, as in quaternion_to_matrix
    trace = m[0][0] + m[1][1] + m[2][2]
    # Shepperd's method: branch on the largest diagonal term for numerical stability.
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s]
    elif m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = 2.0 * math.sqrt(1.0 + m[0][0] - m[1][1] - m[2][2])
        q = [(m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s]
    elif m[1][1] > m[2][2]:
        s = 2.0 * math.sqrt(1.0 + m[1][1] - m[0][0] - m[2][2])
        q = [(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2][2] - m[0][0] - m[1][1])
        q = [(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def quaternion_slerp(q0: ArrayLike, q1: ArrayLike, t: float) -> NDArray[np.float64]:
    """Spherical linear interpolation between unit quaternions (w, x, y, z), t in [0, 1]."""
    a = np.asarray(q0, dtype=np.float64) / np.linalg.norm(q0)
    b = np.asarray(q1, dtype=np.float64) / np.linalg.norm(q1)
    dot = float(np.dot(a, b))
    if dot < 0.0:  # q and -q are the same rotation: take the short arc
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly parallel: lerp is exact to float precision and avoids 0/0
        q = a + t * (b - a)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    q = (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)
    return q / np.linalg.norm(q)


def yaw_from_matrix(rot: ArrayLike) -> float:
    """Heading (rad) about +z of a rotation matrix's x axis, as the devkit's `quaternion_yaw`."""
    r = np.asarray(rot, dtype=np.float64)
    return float(np.arctan2(r[1, 0], r[0, 0]))


def yaw_from_quaternion(q: ArrayLike) -> float:
    """Heading (rad) about +z of the rotation's x axis, as the devkit's `quaternion_yaw`."""
    return yaw_from_matrix(quaternion_to_matrix(q))


def quaternion_from_yaw(yaw: float) -> NDArray[np.float64]:
    """Rotation of `yaw` rad about +z as (w, x, y, z)."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def quaternion_multiply(q0: ArrayLike, q1: ArrayLike) -> NDArray[np.float64]:
    """Hamilton product q0 * q1 of (w, x, y, z) quaternions: the rotation q1, then q0."""
    w0, x0, y0, z0 = np.asarray(q0, dtype=np.float64)
    w1, x1, y1, z1 = np.asarray(q1, dtype=np.float64)
    return np.array(
        [
            w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1,
            w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
            w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1,
            w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1,
        ]
    )


def quaternion_from_rotvec(rotvec: ArrayLike) -> NDArray[np.float64]:
    """Rotation vector (3,) rad (axis * angle) -> unit quaternion (w, x, y, z)."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        q = np.array([1.0, 0.5 * v[0], 0.5 * v[1], 0.5 * v[2]])
        return q / np.linalg.norm(q)
    s = np.sin(0.5 * angle) / angle
    return np.array([np.cos(0.5 * angle), s * v[0], s * v[1], s * v[2]])
