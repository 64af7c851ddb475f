"""Training targets of the CenterPoint head, and the box coding shared with `decode`.

Boxes are (M, 7) x y z l w h yaw in the LIDAR_TOP frame (m, rad), the layout of
`fusion.frame.Boxes.as_array`. Cell (ix, iy) covers x in [x0 + ix dx, x0 + (ix + 1) dx).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fusion.config import BEVConfig
from fusion.model.params import REGRESSION_CHANNELS, ModelParams


@dataclass(frozen=True, eq=False)
class TargetMaps:
    """Dense targets for one sample on the (ny, nx) grid.

    `heatmap` (K, ny, nx) float32 gaussians, 1 at each box's centre cell; `regression`
    (10, ny, nx) float32 as in `HeadMaps.regression`, valid where `mask`; `mask` (ny, nx) bool
    centre cells; `velocity_valid` (ny, nx) bool; `attribute` (ny, nx) int64, -1 for none.
    """

    heatmap: NDArray[np.float32]
    regression: NDArray[np.float32]
    mask: NDArray[np.bool_]
    velocity_valid: NDArray[np.bool_]
    attribute: NDArray[np.int64]


def gaussian_radius(length_cells: float, width_cells: float, min_overlap: float) -> float:
    """CenterNet's radius (cells) within which a shifted box keeps IoU >= min_overlap."""
    h, w = length_cells, width_cells
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def _draw_gaussian(heatmap: NDArray[np.float32], ix: int, iy: int, radius: int) -> None:
    """Max-blend a gaussian of `radius` cells centred on (ix, iy) into `heatmap` (ny, nx)."""
    sigma = (2 * radius + 1) / 6.0
    ys, xs = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma)).astype(np.float32)
    ny, nx = heatmap.shape
    x0, x1 = max(0, ix - radius), min(nx, ix + radius + 1)
    y0, y1 = max(0, iy - radius), min(ny, iy + radius + 1)
    patch = g[y0 - iy + radius : y1 - iy + radius, x0 - ix + radius : x1 - ix + radius]
    np.maximum(heatmap[y0:y1, x0:x1], patch, out=heatmap[y0:y1, x0:x1])


def encode_targets(
    boxes: NDArray[np.floating],
    labels: NDArray[np.integer],
    velocity: NDArray[np.floating],
    attributes: NDArray[np.integer],
    bev: BEVConfig,
    num_classes: int,
    params: ModelParams,
) -> TargetMaps:
    """Targets from M boxes (M, 7), class indices (M,), velocities (M, 2) in m/s (NaN where
    unknown) and attribute indices (M,) (-1 for none). Boxes whose centre is off the grid are
    skipped."""
    nx, ny = bev.grid
    x0, y0 = bev.bev_range[0], bev.bev_range[1]
    dx, dy = bev.cell_size[0], bev.cell_size[1]
    heatmap = np.zeros((num_classes, ny, nx), np.float32)
    regression = np.zeros((REGRESSION_CHANNELS, ny, nx), np.float32)
    mask = np.zeros((ny, nx), bool)
    vel_ok = np.zeros((ny, nx), bool)
    attribute = np.full((ny, nx), -1, np.int64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    for (x, y, z, l, w, h, yaw), k, v, a in zip(boxes, labels, velocity, attributes, strict=True):
        u, t = (x - x0) / dx, (y - y0) / dy
        ix, iy = math.floor(u), math.floor(t)
        if not (0 <= ix < nx and 0 <= iy < ny) or min(l, w, h) <= 0:
            continue
        radius = gaussian_radius(l / dx, w / dy, params.gaussian_overlap)
        _draw_gaussian(heatmap[int(k)], ix, iy, max(params.min_radius, int(radius)))
        regression[:, iy, ix] = (
            u - ix,
            t - iy,
            z,
            math.log(l),
            math.log(w),
            math.log(h),
            math.sin(yaw),
            math.cos(yaw),
            0.0 if np.isnan(v[0]) else v[0],
            0.0 if np.isnan(v[1]) else v[1],
        )
        mask[iy, ix] = True
        vel_ok[iy, ix] = bool(np.all(np.isfinite(v)))
        attribute[iy, ix] = int(a)
    return TargetMaps(heatmap, regression, mask, vel_ok, attribute)


def decode_regression(
    regression: NDArray[np.floating],
    ix: NDArray[np.integer],
    iy: NDArray[np.integer],
    bev: BEVConfig,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Regression vectors (K, 10) at cells (ix, iy) -> boxes (K, 7) x y z l w h yaw and
    velocities (K, 2): the inverse of `encode_targets`' coding."""
    r = np.asarray(regression, np.float64).reshape(-1, REGRESSION_CHANNELS)
    x0, y0 = bev.bev_range[0], bev.bev_range[1]
    dx, dy = bev.cell_size[0], bev.cell_size[1]
    x = x0 + (ix + r[:, 0]) * dx
    y = y0 + (iy + r[:, 1]) * dy
    size = np.exp(np.clip(r[:, 3:6], -5.0, 5.0))
    yaw = np.arctan2(r[:, 6], r[:, 7])
    boxes = np.column_stack([x, y, r[:, 2], size, yaw])
    return boxes, r[:, 8:10].copy()
