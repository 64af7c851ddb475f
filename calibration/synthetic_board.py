"""Synthetic checkerboard images with known intrinsics and pose, to test and try calibration.

Board frame: origin at the first inner corner, x along a row of `pattern[0]` inner corners,
y along the `pattern[1]` rows, z = x cross y (m). Inner corner (i, j) sits at
(i * square, j * square, 0). The square diagonally outside the first corner is black, so a
pattern with one odd and one even count is not symmetric under a half turn (see
`estimation.board_pose`). Pixels follow OpenCV: pixel (u, v) has its centre at (u, v).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.camera import PinholeCamera
from calibration.quaternion import quaternion_to_matrix
from calibration.transform import Transform
from fusion.errors import FusionError


def board_corners(pattern: tuple[int, int], square_size_m: float) -> NDArray[np.float64]:
    """Inner corners (cols * rows, 3) in the board frame (m), row by row, as OpenCV lists them."""
    cols, rows = pattern
    if cols < 2 or rows < 2:
        raise FusionError(f"pattern must have at least 2x2 inner corners, got {pattern}")
    if not square_size_m > 0:
        raise FusionError(f"square size must be positive, got {square_size_m} m")
    jj, ii = np.mgrid[0:rows, 0:cols]
    return np.stack([ii.ravel(), jj.ravel(), np.zeros(cols * rows)], axis=1) * square_size_m


def _undistorted_rays(
    camera: PinholeCamera, distortion: NDArray[np.float64], supersample: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Normalised undistorted coordinates (x, y), each (H * s, W * s), of every sub-pixel sample.

    The lens is inverted (cv2.undistortPoints, iterative) only at the (H + 1) x (W + 1) pixel
    corners and interpolated bilinearly inside each pixel: distortion is smooth at that scale.
    """
    h, w, s = camera.height, camera.width, supersample
    uu, vv = np.meshgrid(np.arange(w + 1) - 0.5, np.arange(h + 1) - 0.5)
    grid = cv2.undistortPoints(
        np.stack([uu.ravel(), vv.ravel()], axis=1).reshape(-1, 1, 2),
        camera.intrinsics,
        distortion,
    ).reshape(h + 1, w + 1, 2)
    frac = (np.arange(s) + 0.5) / s  # sub-sample position inside its pixel, from the corner
    out = np.empty((h, s, w, s, 2))
    for i, fy in enumerate(frac):
        rows = (1 - fy) * grid[:-1] + fy * grid[1:]  # (h, w + 1, 2)
        for j, fx in enumerate(frac):
            out[:, i, :, j] = (1 - fx) * rows[:, :-1] + fx * rows[:, 1:]
    out = out.reshape(h * s, w * s, 2)
    return out[..., 0], out[..., 1]


def render_checkerboard(
    camera: PinholeCamera,
    board_to_camera: Transform,
    pattern: tuple[int, int],
    square_size_m: float,
    *,
    distortion: ArrayLike | None = None,
    supersample: int = 4,
    margin_squares: float = 1.0,
    background: int = 110,
    noise_std: float = 2.0,
    seed: int = 0,
) -> NDArray[np.uint8]:
    """Render (H, W) uint8 grey image of a checkerboard seen by `camera`.

    Each pixel is split into supersample x supersample rays that are intersected with the board
    plane (inverse mapping), so edges are anti-aliased as a real lens would blur them.
    board_to_camera: pose of the board frame in the camera frame (m).
    pattern: (cols, rows) inner corners; the board has (cols + 1) x (rows + 1) squares and a white
        border `margin_squares` squares wide around them (the detector needs a quiet zone).
    distortion: OpenCV (k1, k2, p1, p2, k3) of the lens, or None for a pinhole.
    noise_std: grey levels of Gaussian sensor noise (seeded).
    """
    cols, rows = pattern
    board_corners(pattern, square_size_m)  # validates pattern and square size
    if supersample < 1:
        raise FusionError(f"supersample must be >= 1, got {supersample}")
    s = supersample
    # float32 samples: board coordinates below 100 m keep sub-micrometre precision, at half
    # the memory traffic of float64. Board coordinates are in units of squares from here on.
    f32 = np.float32
    offsets = (np.arange(s) + 0.5) / s - 0.5
    image = np.empty((camera.height, camera.width), dtype=np.float64)
    rot_bc = board_to_camera.rotation.T  # camera -> board rotation
    origin_b = -rot_bc @ board_to_camera.translation / square_size_m  # camera centre, squares
    dist = None if distortion is None else np.asarray(distortion, dtype=np.float64).reshape(-1)
    k_inv = np.linalg.inv(camera.intrinsics)
    lo = -1.0 - margin_squares  # board outline in board x and y (squares)
    hi_x, hi_y = cols + margin_squares, rows + margin_squares
    # Bands of rows keep the sample arrays small (W * band * s^2 rays at a time).
    band = max(1, 400_000 // (camera.width * s * s))
    us = (np.arange(camera.width)[:, None] + offsets[None, :]).ravel()[None, :]  # (1, W s)
    if dist is not None:
        x_lens, y_lens = _undistorted_rays(camera, dist, s)
    for v0 in range(0, camera.height, band):
        v1 = min(camera.height, v0 + band)
        vs = (np.arange(v0, v1)[:, None] + offsets[None, :]).ravel()[:, None]  # (band s, 1)
        if dist is None:
            # Normalised coordinates of a pinhole are separable in u and v: broadcast them.
            xn = (k_inv[0, 0] * us + k_inv[0, 1] * vs + k_inv[0, 2]).astype(f32)
            yn = (k_inv[1, 1] * vs + k_inv[1, 2]).astype(f32)
        else:
            xn = x_lens[v0 * s : v1 * s].astype(f32)
            yn = y_lens[v0 * s : v1 * s].astype(f32)
        d = [f32(rot_bc[k, 0]) * xn + f32(rot_bc[k, 1]) * yn + f32(rot_bc[k, 2]) for k in range(3)]
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = f32(-origin_b[2]) / d[2]
        hit = depth > 0  # False for NaN and for rays that leave the plane behind them
        px = f32(origin_b[0]) + depth * d[0]
        py = f32(origin_b[1]) + depth * d[1]
        on_board = hit & (px >= lo) & (px <= hi_x) & (py >= lo) & (py <= hi_y)
        # Square k covers [k - 1, k) squares: square 0 lies outside the first corner.
        a = np.floor(np.where(on_board, px, 0.0)).astype(np.int32) + 1
        b = np.floor(np.where(on_board, py, 0.0)).astype(np.int32) + 1
        black = on_board & (a >= 0) & (a <= cols) & (b >= 0) & (b <= rows) & (((a + b) & 1) == 0)
        grey = np.where(on_board, f32(235.0), f32(background))
        grey[black] = 20.0
        image[v0:v1] = grey.reshape(v1 - v0, s, camera.width, s).mean(axis=(1, 3))
    if noise_std > 0:
        image = image + np.random.default_rng(seed).normal(0.0, noise_std, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _rotation_xyz(pitch: float, yaw: float, roll: float) -> NDArray[np.float64]:
    """Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in rad."""

    def axis_angle(axis: int, angle: float) -> NDArray[np.float64]:
        q = np.zeros(4)
        q[0] = np.cos(angle / 2)
        q[1 + axis] = np.sin(angle / 2)
        return quaternion_to_matrix(q)

    return axis_angle(2, roll) @ axis_angle(1, yaw) @ axis_angle(0, pitch)


def random_board_poses(
    camera: PinholeCamera,
    pattern: tuple[int, int],
    square_size_m: float,
    n: int,
    *,
    distance_m: tuple[float, float] = (1.5, 3.0),
    max_tilt_deg: float = 40.0,
    max_roll_deg: float = 20.0,
    seed: int = 0,
) -> list[Transform]:
    """`n` varied board->camera poses with the whole board (plus one square) inside the image.

    The board faces the camera (its z axis points away from it), tilted up to max_tilt_deg
    about its x and y axes and rolled up to max_roll_deg, at distance_m (m) along the view ray.
    Tilted views are what make focal length observable, so tilts are drawn from the outer
    half of the range.
    """
    cols, rows = pattern
    rng = np.random.default_rng(seed)
    corners = board_corners(pattern, square_size_m)
    s = square_size_m
    outline = np.array(
        [
            [-2 * s, -2 * s, 0],
            [(cols + 1) * s, -2 * s, 0],
            [-2 * s, (rows + 1) * s, 0],
            [(cols + 1) * s, (rows + 1) * s, 0],
        ]
    )
    centre = corners.mean(axis=0)
    poses: list[Transform] = []
    for _ in range(1000 * n):
        if len(poses) == n:
            break
        tilt = np.radians(max_tilt_deg) * rng.uniform(0.4, 1.0, 2) * rng.choice([-1.0, 1.0], 2)
        roll = np.radians(rng.uniform(-max_roll_deg, max_roll_deg))
        rot = _rotation_xyz(tilt[0], tilt[1], roll)
        target = rng.uniform([0.3, 0.3], [0.7, 0.7]) * [camera.width, camera.height]
        ray = np.linalg.inv(camera.intrinsics) @ np.array([target[0], target[1], 1.0])
        t = ray * rng.uniform(*distance_m) - rot @ centre
        pose = Transform.from_rotation_translation(rot, t, src="board", dst="camera")
        _, _, valid = camera.project(pose.apply(outline))
        if np.all(valid):
            poses.append(pose)
    if len(poses) < n:
        raise FusionError(
            f"could not place {n} boards of {pattern} x {square_size_m} m in a "
            f"{camera.width}x{camera.height} image at {distance_m} m"
        )
    return poses
