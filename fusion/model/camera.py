"""Camera branch, dense part: a compact image CNN and the LSS depth-distribution head.

This is the camera ONNX graph: images in, depth probabilities and context features out; the
lift to BEV (`kernels.bev_pool`) runs outside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion.model.layers import conv_bn_relu


class ImageBackbone(nn.Module):
    """(N, 3, H, W) -> features at strides 8 (N, w2, H/8, W/8), 16 (N, w3, H/16, W/16) and
    32 (N, w4, H/32, W/32)."""

    def __init__(self, widths: tuple[int, int, int, int, int]) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = conv_bn_relu(3, w0, stride=2)
        self.stage4 = nn.Sequential(conv_bn_relu(w0, w1, stride=2), conv_bn_relu(w1, w1))
        self.stage8 = nn.Sequential(conv_bn_relu(w1, w2, stride=2), conv_bn_relu(w2, w2))
        self.stage16 = nn.Sequential(conv_bn_relu(w2, w3, stride=2), conv_bn_relu(w3, w3))
        self.stage32 = nn.Sequential(conv_bn_relu(w3, w4, stride=2), conv_bn_relu(w4, w4))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f8 = self.stage8(self.stage4(self.stem(images)))
        f16 = self.stage16(f8)
        return f8, f16, self.stage32(f16)


class CameraNet(nn.Module):
    """Images -> per-pixel depth distribution and context features (LSS).

    Input `images` (N, 3, H, W) float32, normalized with `fusion.config.IMAGE_MEAN`/`IMAGE_STD`.
    Outputs, at the feature stride s (16 or 8): `depth` (N, D, H/s, W/s) probabilities over the
    depth bins (sum 1 over D) and `context` (N, C, H/s, W/s).
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int, int],
        depth_bins: int,
        channels: int,
        stride: int = 16,
    ):
        super().__init__()
        if stride not in (8, 16):
            raise ValueError(f"feature stride {stride}: the net has levels 8 and 16")
        self.depth_bins = depth_bins
        self.stride = stride
        self.backbone = ImageBackbone(widths)
        mid = widths[3]
        self.lateral = nn.Conv2d(widths[4], mid, 1)
        if stride == 8:  # a second FPN level: stride-8 detail, with the coarser context added
            self.lateral8 = nn.Conv2d(widths[2], mid, 1)
        self.neck = conv_bn_relu(mid, mid)
        self.out = nn.Conv2d(mid, depth_bins + channels, 1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        f8, f16, f32 = self.backbone(images)
        # An FPN: coarse context helps the depth estimate at little cost.
        x = f16 + F.interpolate(self.lateral(f32), size=f16.shape[-2:], mode="nearest")
        if self.stride == 8:
            x = self.lateral8(f8) + F.interpolate(x, size=f8.shape[-2:], mode="nearest")
        x = self.out(self.neck(x))
        depth = torch.softmax(x[:, : self.depth_bins], dim=1)
        return depth, x[:, self.depth_bins :]
