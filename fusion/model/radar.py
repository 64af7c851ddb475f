"""Radar branch, dense part: a small conv over the `kernels.rasterize_radar` BEV raster."""

from __future__ import annotations

from torch import Tensor, nn

from fusion.model.layers import conv_bn_relu


class RadarNet(nn.Module):
    """(B, R, ny, nx) radar raster (R = `cfg.radar.raster_channels`: mean x y z rcs vx vy dt
    per cell, plus the point count) -> (B, C, ny, nx) radar BEV features."""

    def __init__(self, raster_channels: int, channels: int) -> None:
        super().__init__()
        # BN first: raster channels differ in scale by orders of magnitude (m, dBsm, counts).
        self.norm = nn.BatchNorm2d(raster_channels)
        self.convs = nn.Sequential(
            conv_bn_relu(raster_channels, channels), conv_bn_relu(channels, channels)
        )

    def forward(self, raster: Tensor) -> Tensor:
        return self.convs(self.norm(raster))
