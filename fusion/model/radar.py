"""Radar branch, dense part: a small conv over the `kernels.rasterize_radar` BEV raster."""

from __future__ import annotations

from torch import Tensor, nn

from fusion.model.layers import conv_bn_relu

RADAR_RASTER_CHANNELS = 8  # mean x y z rcs vx vy dt per cell, plus the point count


class RadarNet(nn.Module):
    """(B, 8, ny, nx) radar raster -> (B, C, ny, nx) radar BEV features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # BN first: raster channels differ in scale by orders of magnitude (m, dBsm, counts).
        self.norm = nn.BatchNorm2d(RADAR_RASTER_CHANNELS)
        self.convs = nn.Sequential(
            conv_bn_relu(RADAR_RASTER_CHANNELS, channels), conv_bn_relu(channels, channels)
        )

    def forward(self, raster: Tensor) -> Tensor:
        return self.convs(self.norm(raster))
