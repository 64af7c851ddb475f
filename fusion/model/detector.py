"""The detector: per-modality encoders -> fuser -> BEV backbone -> CenterPoint head.

Three variants from one config share the fuser/backbone/head design and the decode:
`fusion` (camera + LIDAR + radar), `camera` (the vision-only baseline) and `lidar`.
A missing sensor contributes a zero BEV map, which modality dropout trains for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from fusion.config import DETECTION_CLASSES, Modality, PipelineConfig
from fusion.model.bev import BEVBackbone, ConvFuser
from fusion.model.camera import CameraNet
from fusion.model.head import CenterHead, HeadMaps
from fusion.model.inputs import BatchInputs
from fusion.model.kernel_ops import bev_pool_autograd, scatter_bev_autograd
from fusion.model.lidar import LidarEncoder
from fusion.model.params import ModelParams
from fusion.model.radar import RadarNet

Variant = Literal["fusion", "camera", "lidar"]
VARIANTS: tuple[str, ...] = get_args(Variant)


def variant_modalities(variant: Variant) -> tuple[Modality, ...]:
    """The sensors a variant reads, in the fuser's concatenation order."""
    match variant:
        case "fusion":
            return ("camera", "lidar", "radar")
        case "camera":
            return ("camera",)
        case "lidar":
            return ("lidar",)
        case _:
            raise ValueError(f"unknown model variant {variant!r} (known: {', '.join(VARIANTS)})")


@dataclass(frozen=True, eq=False)
class DetectorOutput:
    """`maps` for the batch; `depth` (N, D, h, w) depth probabilities of the present images in
    (sample, camera) order, None without a camera branch or without any present camera."""

    maps: HeadMaps
    depth: Tensor | None


class Detector(nn.Module):
    """BEVFusion-style detector of one variant; all sizes from `cfg` and `params` (default:
    `cfg.params`)."""

    def __init__(self, cfg: PipelineConfig, variant: Variant, params: ModelParams | None = None):
        super().__init__()
        # the params live in the config, so that the stored config rebuilds this model
        self.cfg = cfg if params is None else dataclasses.replace(cfg, params=params)
        self.variant = variant
        self.params = self.cfg.params
        self.modalities = variant_modalities(variant)
        m = cfg.model
        self.encoders = nn.ModuleDict()
        for modality in self.modalities:
            match modality:
                case "camera":
                    self.encoders[modality] = CameraNet(
                        self.params.image_widths,
                        cfg.camera.depth_bins,
                        cfg.camera.channels_out,
                        cfg.camera.feature_stride,
                    )
                case "lidar":
                    self.encoders[modality] = LidarEncoder(
                        cfg.point_cloud,
                        cfg.bev,
                        m.lidar_channels,
                        self.params.pillar_layers,
                        self.params.point_features,
                    )
                case "radar":
                    self.encoders[modality] = RadarNet(cfg.radar.raster_channels, m.radar_channels)
        bev_in = sum(self.fuser_input_widths().values())
        self.fuser = ConvFuser(bev_in, m.bev_channels)
        self.backbone = BEVBackbone(m.bev_channels, self.params.bev_blocks)
        self.head = CenterHead(m.bev_channels, m.head_channels, len(DETECTION_CLASSES))

    def fuser_input_widths(self) -> dict[str, int]:
        """Channels each sensor's BEV map brings to the fuser, in concatenation order."""
        widths = {
            "camera": self.cfg.camera.channels_out,
            "lidar": self.cfg.model.lidar_channels,
            "radar": self.cfg.model.radar_channels,
        }
        return {m: widths[m] for m in self.modalities}

    # -- the dense stages, each also an ONNX graph (see fusion.engines.export) ------------------

    def camera_net(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) -> depth (N, D, h, w), context (N, C, h, w)."""
        return self.encoders["camera"](images)

    def pillar_net(self, voxels: Tensor, num_points: Tensor, coords: Tensor) -> Tensor:
        """(V, P, 5), (V,), (V, 3) -> (V, C_lidar)."""
        return self.encoders["lidar"].pillars(voxels, num_points, coords)

    def bev_net(self, *bev_inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """BEV inputs in `self.modalities` order -> (heatmap, regression, attribute).

        Camera: pooled context (B, C_cam, ny, nx); LIDAR: scattered pillars on the pillar grid
        (B, C_lidar, ny_p, nx_p), brought to the BEV grid here; radar: the raw raster
        (B, R, ny, nx), encoded here."""
        maps = []
        for modality, x in zip(self.modalities, bev_inputs, strict=True):
            maps.append(x if modality == "camera" else self.encoders[modality](x))
        return self.head(self.backbone(self.fuser(maps)))

    # -- whole-batch forward for training -------------------------------------------------------

    def bev_input_shape(self, modality: Modality) -> tuple[int, int, int]:
        """(C, ny, nx) of one sample's BEV-graph input for `modality`."""
        nx, ny = self.cfg.bev.grid
        match modality:
            case "camera":
                return (self.cfg.camera.channels_out, ny, nx)
            case "lidar":
                px, py, _ = self.cfg.point_cloud.grid_size
                return (self.cfg.model.lidar_channels, py, px)
            case "radar":
                return (self.cfg.radar.raster_channels, ny, nx)

    def forward(self, batch: BatchInputs) -> DetectorOutput:
        depth = None
        bev_inputs = []
        for modality in self.modalities:
            match modality:
                case "camera":
                    cam_bev, depth = self.camera_bev(batch)
                    bev_inputs.append(cam_bev)
                case "lidar":
                    bev_inputs.append(self.lidar_bev(batch))
                case "radar":
                    bev_inputs.append(batch.radar_raster)
        heatmap, regression, attribute = self.bev_net(*bev_inputs)
        return DetectorOutput(HeadMaps(heatmap, regression, attribute), depth)

    def camera_bev(self, batch: BatchInputs) -> tuple[Tensor, Tensor | None]:
        """Images -> depth x context lifted to BEV with `kernels.bev_pool`, (B, C, ny, nx)."""
        nx, ny = self.cfg.bev.grid
        b = batch.batch_size
        c = self.cfg.camera.channels_out
        present = batch.camera_present
        images = batch.images[present]  # (N, 3, H, W), (sample, camera) order
        if len(images) == 0:
            return batch.images.new_zeros((b, c, ny, nx)), None
        depth, context = self.camera_net(images)
        counts = present.sum(dim=1).tolist()
        out = []
        start = 0
        for i, n in enumerate(counts):
            geometry = batch.camera_geometry[i]
            if n == 0 or geometry is None:
                out.append(depth.new_zeros((c, ny, nx)))
            else:
                d, f = depth[start : start + n], context[start : start + n]
                out.append(bev_pool_autograd(d.float(), f.float(), geometry))
            start += n
        return torch.stack(out), depth

    def lidar_bev(self, batch: BatchInputs) -> Tensor:
        """Pillar features scattered by `kernels.scatter_bev` onto the pillar grid,
        (B, C, ny_p, nx_p)."""
        c, ny, nx = self.bev_input_shape("lidar")
        b = batch.batch_size
        if len(batch.voxel_coords) == 0:
            return batch.images.new_zeros((b, c, ny, nx))
        feats = self.pillar_net(batch.voxel_features, batch.voxel_num_points, batch.voxel_coords)
        out = []
        for i in range(b):
            sel = batch.voxel_sample == i
            if not bool(sel.any()):
                out.append(feats.new_zeros((c, ny, nx)))
            else:
                out.append(
                    scatter_bev_autograd(feats[sel].float(), batch.voxel_coords[sel], (nx, ny))
                )
        return torch.stack(out)


def build_detector(
    cfg: PipelineConfig, variant: Variant, params: ModelParams | None = None
) -> Detector:
    """The detector of `variant` with freshly initialized weights."""
    return Detector(cfg, variant, params)
