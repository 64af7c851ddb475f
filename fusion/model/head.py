"""CenterPoint-style head: per-class centre heatmaps and per-cell box regression."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from fusion.model.layers import conv_bn_relu
from fusion.model.params import ATTRIBUTE_NAMES, REGRESSION_CHANNELS

# Heatmap logits start at p = 0.1 (focal-loss prior, as in CenterNet/CenterPoint).
HEATMAP_PRIOR_BIAS = -math.log((1 - 0.1) / 0.1)


@dataclass(frozen=True, eq=False)
class HeadMaps:
    """Head outputs for a batch on the BEV grid (iy rows, ix columns; LIDAR_TOP frame).

    `heatmap` (B, K, ny, nx) logits per class; `regression` (B, 10, ny, nx): offset x y
    (cells), z (m), log l w h (m), sin cos yaw, vx vy (m/s); `attribute` (B, 8, ny, nx)
    logits over ATTRIBUTE_NAMES.
    """

    heatmap: Tensor
    regression: Tensor
    attribute: Tensor


class CenterHead(nn.Module):
    """(B, C, ny, nx) BEV features -> (heatmap, regression, attribute) tensors."""

    def __init__(self, in_channels: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.shared = conv_bn_relu(in_channels, channels)
        self.heatmap = nn.Sequential(
            conv_bn_relu(channels, channels), nn.Conv2d(channels, num_classes, 1)
        )
        n_out = REGRESSION_CHANNELS + len(ATTRIBUTE_NAMES)
        self.boxes = nn.Sequential(conv_bn_relu(channels, channels), nn.Conv2d(channels, n_out, 1))
        nn.init.constant_(self.heatmap[-1].bias, HEATMAP_PRIOR_BIAS)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.shared(x)
        boxes = self.boxes(x)
        return self.heatmap(x), boxes[:, :REGRESSION_CHANNELS], boxes[:, REGRESSION_CHANNELS:]
