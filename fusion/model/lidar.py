"""LIDAR branch, dense parts: the pillar feature net (PointPillars' PFN) and the BEV
downsampler from the pillar grid to the shared BEV grid.

The PFN is the lidar ONNX graph (dynamic number of pillars V): hard-voxelized points in, one
feature vector per pillar out. `kernels.voxelize` before it and `kernels.scatter_bev` after it
run outside the graph; the downsampler runs first in the BEV graph.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fusion.config import BEVConfig, PointCloudConfig
from fusion.errors import ConfigError
from fusion.model.layers import conv_bn_relu
from fusion.model.params import PointFeatures

# Intensity arrives in 0..255 (nuScenes); the net sees it in 0..1.
INTENSITY_SCALE = 1.0 / 255.0
DECORATED_FEATURES = 10  # x y z intensity dt, offsets to the pillar mean (3) and centre (2)
# "scaled" point features: dt over the 0.5 s between nuScenes keyframes (10 sweeps lag 0.45 s).
TIME_LAG_SCALE_S = 0.5


def feature_scale(cfg: PointCloudConfig, mode: PointFeatures) -> list[float]:
    """Divisors of the 10 decorated features (after intensity's 1/255): all 1 for "raw";
    for "scaled" x y z by half the point range, dt by TIME_LAG_SCALE_S, the five offsets by the
    pillar width, so each is O(1) and moves the first layer as much as the others do."""
    match mode:
        case "raw":
            return [1.0] * DECORATED_FEATURES
        case "scaled":
            r = cfg.point_range
            half = [(r[3] - r[0]) / 2, (r[4] - r[1]) / 2, (r[5] - r[2]) / 2]
            pillar = cfg.voxel_size[0]
            return [*half, 1.0, TIME_LAG_SCALE_S, *[pillar] * 5]


class PillarNet(nn.Module):
    """Pillars -> features.

    Inputs: `voxels` (V, P, 5) float32 x y z (m, LIDAR_TOP) intensity (0..255) dt (s),
    zero-padded;
    `num_points` (V,) int32 points per pillar (>= 1); `coords` (V, 3) int32 (ix, iy, iz).
    Output: (V, C) float32.
    """

    def __init__(
        self,
        cfg: PointCloudConfig,
        channels: int,
        layers: int = 1,
        point_features: PointFeatures = "raw",
    ) -> None:
        super().__init__()
        self.register_buffer("voxel_size", torch.tensor(cfg.voxel_size[:2], dtype=torch.float32))
        self.register_buffer("origin", torch.tensor(cfg.point_range[:2], dtype=torch.float32))
        # not persistent: it follows from the config and params, and older weights lack it
        inv = [1.0 / d for d in feature_scale(cfg, point_features)]
        self.register_buffer("feature_scale", torch.tensor(inv), persistent=False)
        blocks: list[nn.Module] = []
        c_in = DECORATED_FEATURES
        for _ in range(layers):
            blocks += [nn.Linear(c_in, channels, bias=False), _PointBatchNorm(channels), nn.ReLU()]
            c_in = channels
        self.mlp = nn.Sequential(*blocks)

    def forward(self, voxels: Tensor, num_points: Tensor, coords: Tensor) -> Tensor:
        if not self.training and len(self.mlp) == 3:
            return self._forward_folded(voxels, num_points, coords)
        return self._forward_layers(voxels, num_points, coords)

    def _forward_layers(self, voxels: Tensor, num_points: Tensor, coords: Tensor) -> Tensor:
        """The network as trained: decorate, scale and mask every point, the layers, max."""
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
        # padded points contribute 0 to the max (ReLU >= 0)
        x = self.mlp(feats * self.feature_scale * valid) * valid
        return x.max(dim=1).values

    def _forward_folded(self, voxels: Tensor, num_points: Tensor, coords: Tensor) -> Tensor:
        """The one-layer network at inference, the same function rearranged so that one matmul
        and one max touch the (V, P, C) tensor (the layered form makes eight passes over it,
        memory-bound on a CPU, most of the LIDAR graph's time):
        - the batch norm (running statistics) and the feature scale fold into the linear layer;
        - the linear layer of the decorated features splits into a per-point part on the raw
          x y z intensity dt (the offsets' weights added to those of x y z) and a per-pillar part
          (minus the offsets' weights times the pillar's mean and centre, plus the bias);
        - ReLU and the per-pillar part commute with the max over the pillar's points (ReLU is
          monotonic, the per-pillar part the same for every point), so both act on (V, C);
        - padded points are kept out of the max by a -1e9 input column (a 6th feature), which is
          what multiplying by the mask did: the max over the real points (>= 1 per pillar; a
          pillar of none gives ReLU(-1e9 + ...) = 0, as the mask did).
        Equal to `_forward_layers` in eval mode up to float rounding (tested)."""
        linear, norm = self.mlp[0], self.mlp[1].bn
        gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (C,)
        w = linear.weight * gain[:, None] * self.feature_scale[None, :]  # (C, 10)
        bias = norm.bias - norm.running_mean * gain  # (C,)
        w_xyz, w_int, w_dt = w[:, 0:3], w[:, 3:4] * INTENSITY_SCALE, w[:, 4:5]
        w_mean, w_centre = w[:, 5:8], w[:, 8:10]
        w_point = torch.cat(  # (6, C): x y z intensity dt, padding
            [
                (w_xyz + w_mean + nn.functional.pad(w_centre, (0, 1))).t(),
                w_int.t(),
                w_dt.t(),
                torch.full_like(w_int.t(), -1e9),
            ]
        )
        p = voxels.shape[1]
        valid = torch.arange(p, device=voxels.device).unsqueeze(0) < num_points.unsqueeze(1)
        padded = (~valid).to(voxels.dtype).unsqueeze(-1)  # (V, P, 1)
        per_point = torch.cat([voxels, padded], dim=-1) @ w_point  # (V, P, C)
        n = num_points.to(voxels.dtype).clamp(min=1.0).unsqueeze(-1)  # (V, 1)
        mean = (voxels[..., :3] * (1.0 - padded)).sum(dim=1) / n  # (V, 3)
        centre = (coords[:, :2].to(voxels.dtype) + 0.5) * self.voxel_size + self.origin  # (V, 2)
        per_pillar = bias - mean @ w_mean.t() - centre @ w_centre.t()  # (V, C)
        return torch.relu(per_point.max(dim=1).values + per_pillar)


class _PointBatchNorm(nn.Module):
    """BatchNorm over the channel axis of (V, P, C) point features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


def pillar_grid_ratio(pc: PointCloudConfig, bev: BEVConfig) -> int:
    """How many pillars span one BEV cell (1, 2, 4, ...); the grids must nest exactly."""
    nx, ny, _ = pc.grid_size
    bx, by = bev.grid
    same_extent = all(
        math.isclose(a, b, abs_tol=1e-6)
        for a, b in zip(
            (pc.point_range[0], pc.point_range[1], pc.point_range[3], pc.point_range[4]),
            (bev.bev_range[0], bev.bev_range[1], bev.bev_range[3], bev.bev_range[4]),
            strict=True,
        )
    )
    ratio = nx // bx
    if not same_extent or nx != bx * ratio or ny != by * ratio or ratio & (ratio - 1):
        raise ConfigError(
            f"point_cloud grid {nx}x{ny} over {pc.point_range[:2]}..{pc.point_range[3:5]} must "
            f"cover the BEV grid {bx}x{by} over the same x/y range, a power of 2 finer"
        )
    return ratio


class LidarEncoder(nn.Module):
    """`pillars`: PillarNet; `bev`: (B, C, ny_p, nx_p) scattered pillars -> (B, C, ny, nx) on the
    BEV grid (strided convs when pillars are finer than BEV cells, identity otherwise)."""

    def __init__(
        self,
        pc: PointCloudConfig,
        bev: BEVConfig,
        channels: int,
        layers: int = 1,
        point_features: PointFeatures = "raw",
    ):
        super().__init__()
        self.pillars = PillarNet(pc, channels, layers, point_features)
        steps = int(math.log2(pillar_grid_ratio(pc, bev)))
        self.bev = nn.Sequential(
            *[conv_bn_relu(channels, channels, stride=2) for _ in range(steps)]
        )

    def forward(self, scattered: Tensor) -> Tensor:
        return self.bev(scattered)
