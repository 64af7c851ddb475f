"""LIDAR branch, dense part: the pillar feature net (PointPillars' PFN).

This is the lidar ONNX graph (dynamic number of pillars V): hard-voxelized points in,
one feature vector per pillar out. `kernels.voxelize` before it and `kernels.scatter_bev`
after it run outside the graph.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusion.config import PointCloudConfig

# Intensity arrives in 0..255 (nuScenes); the net sees it in 0..1.
INTENSITY_SCALE = 1.0 / 255.0
DECORATED_FEATURES = 10  # x y z intensity dt, offsets to the pillar mean (3) and centre (2)


class PillarNet(nn.Module):
    """Pillars -> features.

    Inputs: `voxels` (V, P, 5) float32 x y z (m, LIDAR_TOP) intensity dt, zero-padded;
    `num_points` (V,) int32 points per pillar (>= 1); `coords` (V, 3) int32 (ix, iy, iz).
    Output: (V, C) float32.
    """

    def __init__(self, cfg: PointCloudConfig, channels: int, layers: int = 1) -> None:
        super().__init__()
        self.register_buffer("voxel_size", torch.tensor(cfg.voxel_size[:2], dtype=torch.float32))
        self.register_buffer("origin", torch.tensor(cfg.point_range[:2], dtype=torch.float32))
        blocks: list[nn.Module] = []
        c_in = DECORATED_FEATURES
        for _ in range(layers):
            blocks += [nn.Linear(c_in, channels, bias=False), _PointBatchNorm(channels), nn.ReLU()]
            c_in = channels
        self.mlp = nn.Sequential(*blocks)

    def forward(self, voxels: Tensor, num_points: Tensor, coords: Tensor) -> Tensor:
        p = voxels.shape[1]
        n = num_points.to(voxels.dtype).clamp(min=1.0).unsqueeze(-1)  # (V, 1)
        valid = torch.arange(p, device=voxels.device).unsqueeze(0) < num_points.unsqueeze(1)
        valid = valid.to(voxels.dtype).unsqueeze(-1)  # (V, P, 1)
        xyz = voxels[..., :3]
        mean = (xyz * valid).sum(dim=1) / n  # (V, 3)
        centre = (coords[:, :2].to(voxels.dtype) + 0.5) * self.voxel_size + self.origin  # (V, 2)
        feats = torch.cat(
            [
                xyz,
                voxels[..., 3:4] * INTENSITY_SCALE,
                voxels[..., 4:5],
                xyz - mean.unsqueeze(1),
                xyz[..., :2] - centre.unsqueeze(1),
            ],
            dim=-1,
        )
        x = self.mlp(feats * valid) * valid  # padded points contribute 0 to the max (ReLU >= 0)
        return x.max(dim=1).values


class _PointBatchNorm(nn.Module):
    """BatchNorm over the channel axis of (V, P, C) point features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)
