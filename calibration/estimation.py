"""Camera intrinsics, lens distortion and board poses from checkerboard images (OpenCV).

The board frame is the one of `calibration.synthetic_board`: origin at the first inner corner,
x along a row of `pattern[0]` inner corners, y along the rows, z away from the camera, and the
square diagonally outside the origin corner black. Detected corners are put into that order
before use, so poses are unique for patterns with one odd and one even count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.camera import PinholeCamera
from calibration.synthetic_board import board_corners
from calibration.transform import Transform
from fusion.errors import FusionError

MIN_VIEWS = 3


@dataclass(frozen=True, eq=False)
class CheckerboardCalibration:
    """Result of `calibrate_from_checkerboards`.

    camera: the estimated pinhole intrinsics (px) and image size.
    distortion: (5,) float64 OpenCV coefficients (k1, k2, p1, p2, k3).
    rms_px: root-mean-square reprojection error over all corners (px).
    board_to_camera: one board->camera pose (m) per used view, in input order.
    used_views: indices into the input images of the views whose board was found.
    skipped_views: indices of the images in which no board was found.
    """

    camera: PinholeCamera
    distortion: NDArray[np.float64] = field(repr=False)
    rms_px: float
    board_to_camera: tuple[Transform, ...] = field(repr=False)
    used_views: tuple[int, ...]
    skipped_views: tuple[int, ...]

    @property
    def num_views(self) -> int:
        """Number of views the calibration used."""
        return len(self.used_views)


def _grey(image: ArrayLike, index: int | None = None) -> NDArray[np.uint8]:
    img = np.asarray(image)
    where = "image" if index is None else f"image {index}"
    if img.dtype != np.uint8:
        raise FusionError(f"{where} must be uint8, got {img.dtype}")
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    raise FusionError(f"{where} must be (H, W) or (H, W, 3), got shape {img.shape}")


def _check_pattern(pattern: tuple[int, int]) -> tuple[int, int]:
    cols, rows = (int(x) for x in pattern)
    if cols < 3 or rows < 3:
        raise FusionError(f"pattern must count at least 3x3 inner corners, got {pattern}")
    return cols, rows


def _mean_grey(grey: NDArray[np.uint8], point: NDArray[np.float64]) -> float:
    x = int(np.clip(round(point[0]), 1, grey.shape[1] - 2))
    y = int(np.clip(round(point[1]), 1, grey.shape[0] - 2))
    return float(grey[y - 1 : y + 2, x - 1 : x + 2].mean())


def _canonical_order(
    corners: NDArray[np.float64], grey: NDArray[np.uint8], pattern: tuple[int, int]
) -> NDArray[np.float64]:
    """Reorder detected corners (rows * cols, 2) into the board frame's order."""
    cols, rows = pattern
    grid = corners.reshape(rows, cols, 2)
    dx = grid[0, 1] - grid[0, 0]
    dy = grid[1, 0] - grid[0, 0]
    # Board x cross y must point away from the camera, i.e. turn clockwise in the image
    # (v down); OpenCV may list a row right to left, which mirrors the board.
    if dx[0] * dy[1] - dx[1] * dy[0] < 0:
        grid = grid[:, ::-1]
        dx = grid[0, 1] - grid[0, 0]
        dy = grid[1, 0] - grid[0, 0]
    # The square diagonally outside the origin is black, its neighbour along x is white; a
    # half turn of the list swaps them.
    outside = _mean_grey(grey, grid[0, 0] - 0.5 * dx - 0.5 * dy)
    along_x = _mean_grey(grey, grid[0, 0] + 0.5 * dx - 0.5 * dy)
    if outside > along_x:
        grid = grid[::-1, ::-1]
    return grid.reshape(-1, 2)


def detect_corners(image: ArrayLike, pattern: tuple[int, int]) -> NDArray[np.float64] | None:
    """Sub-pixel inner corners (cols * rows, 2) in px in board order, or None if not found.

    image: (H, W) or (H, W, 3) BGR uint8; pattern: (cols, rows) inner corners."""
    pattern = _check_pattern(pattern)
    grey = _grey(image)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(grey, pattern, flags=flags)
    if not found or corners is None:
        return None
    c = corners.reshape(-1, 2)
    # Search window about a third of the smallest corner spacing: large enough to converge,
    # small enough not to reach the next corner.
    grid = c.reshape(pattern[1], pattern[0], 2)
    spacing = min(
        np.linalg.norm(np.diff(grid, axis=0), axis=-1).min(),
        np.linalg.norm(np.diff(grid, axis=1), axis=-1).min(),
    )
    half = int(np.clip(spacing / 3, 2, 11))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    refined = cv2.cornerSubPix(grey, c.reshape(-1, 1, 2).copy(), (half, half), (-1, -1), criteria)
    return _canonical_order(refined.reshape(-1, 2).astype(np.float64), grey, pattern)


def _pose(rvec: NDArray[np.float64], tvec: NDArray[np.float64]) -> Transform:
    rot, _ = cv2.Rodrigues(rvec)
    return Transform.from_rotation_translation(rot, tvec.reshape(3), src="board", dst="camera")


def calibrate_from_checkerboards(
    images: Sequence[ArrayLike], pattern: tuple[int, int], square_size_m: float
) -> CheckerboardCalibration:
    """Estimate intrinsics and distortion from images of a flat checkerboard.

    images: (H, W) or (H, W, 3) BGR uint8 images of one camera, all the same size.
    pattern: (cols, rows) inner corners; square_size_m: side of a square (m).
    Images without a detectable board are skipped; fewer than 3 usable views is an error.
    Varied tilts of the board (30 to 45 deg) are what make the focal length observable.
    """
    pattern = _check_pattern(pattern)
    if len(images) == 0:
        raise FusionError("no images given for checkerboard calibration")
    shapes = {np.shape(img)[:2] for img in images}
    if len(shapes) != 1:
        raise FusionError(f"all images must have the same size, got (H, W) sizes {sorted(shapes)}")
    height, width = shapes.pop()
    object_points = board_corners(pattern, square_size_m).astype(np.float32)
    used: list[int] = []
    skipped: list[int] = []
    image_points: list[NDArray[np.float32]] = []
    for index, image in enumerate(images):
        _grey(image, index)
        corners = detect_corners(image, pattern)
        if corners is None:
            skipped.append(index)
            continue
        used.append(index)
        image_points.append(corners.astype(np.float32).reshape(-1, 1, 2))
    if len(used) < MIN_VIEWS:
        raise FusionError(
            f"checkerboard {pattern[0]}x{pattern[1]} found in {len(used)} of {len(images)} "
            f"images; calibration needs at least {MIN_VIEWS}"
        )
    rms, k, dist, rvecs, tvecs = cv2.calibrateCamera(
        [object_points.reshape(-1, 1, 3)] * len(used), image_points, (width, height), None, None
    )
    return CheckerboardCalibration(
        camera=PinholeCamera(k, width, height),
        distortion=np.asarray(dist, dtype=np.float64).reshape(-1)[:5],
        rms_px=float(rms),
        board_to_camera=tuple(_pose(r, t) for r, t in zip(rvecs, tvecs, strict=True)),
        used_views=tuple(used),
        skipped_views=tuple(skipped),
    )


def board_pose(
    image: ArrayLike,
    camera: PinholeCamera,
    pattern: tuple[int, int],
    square_size_m: float,
    distortion: ArrayLike | None = None,
) -> Transform:
    """Pose of the checkerboard in the camera frame (board -> camera, m) by solvePnP.

    image: (H, W) or (H, W, 3) BGR uint8; pattern: (cols, rows) inner corners, one odd and one
    even so that the board has no half-turn symmetry; distortion: OpenCV (5,) or None."""
    cols, rows = _check_pattern(pattern)
    if (cols + rows) % 2 == 0:
        raise FusionError(
            f"pattern {cols}x{rows} looks the same after a half turn, so its pose is ambiguous; "
            "use a board with one odd and one even number of inner corners"
        )
    shape = np.shape(image)
    if len(shape) < 2 or (shape[0], shape[1]) != (camera.height, camera.width):
        raise FusionError(
            f"image is {shape[:2]} (H, W) but the camera is {camera.height}x{camera.width}"
        )
    corners = detect_corners(image, pattern)
    if corners is None:
        raise FusionError(f"checkerboard {cols}x{rows} not found in the image")
    dist = np.zeros(5) if distortion is None else np.asarray(distortion, dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(
        board_corners(pattern, square_size_m),
        corners,
        camera.intrinsics,
        dist,
        flags=cv2.SOLVEPNP_IPPE,
    )
    if not ok:
        raise FusionError(f"solvePnP found no pose for the {cols}x{rows} checkerboard")
    return _pose(rvec, tvec)
