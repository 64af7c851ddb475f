"""Fuser (concat + conv), BEV backbone and neck."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusion.model.layers import conv_bn_relu


class ConvFuser(nn.Module):
    """Concatenate the modalities' BEV maps (B, C_i, ny, nx) and mix them with a 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels)

    def forward(self, maps: list[Tensor]) -> Tensor:
        return self.conv(torch.cat(maps, dim=1))


def _up(c_in: int, c_out: int, factor: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, factor, stride=factor, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class BEVBackbone(nn.Module):
    """SECOND-style two-stage backbone with an upsampling neck.

    (B, C, ny, nx) -> (B, C, ny, nx): stages at strides 2 (C) and 4 (2C), each brought back to
    stride 1 with C/2 channels and concatenated. ny and nx must be divisible by 4.
    """

    def __init__(self, channels: int, blocks: tuple[int, int]) -> None:
        super().__init__()
        c = channels
        self.down1 = nn.Sequential(
            conv_bn_relu(c, c, stride=2), *[conv_bn_relu(c, c) for _ in range(blocks[0])]
        )
        self.down2 = nn.Sequential(
            conv_bn_relu(c, 2 * c, stride=2),
            *[conv_bn_relu(2 * c, 2 * c) for _ in range(blocks[1])],
        )
        self.up1 = _up(c, c // 2, 2)
        self.up2 = _up(2 * c, c - c // 2, 4)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.down1(x)
        x2 = self.down2(x1)
        return torch.cat([self.up1(x1), self.up2(x2)], dim=1)
