"""Model inputs: a collated batch of `fusion.preprocess.inputs.SampleInputs` as tensors.

`fusion.preprocess.inputs` builds `SampleInputs` from a `Frame` (images resized and cropped,
camera geometry precomputed for `kernels.bev_pool`, points voxelized, radar rasterized); the
detector consumes a `BatchInputs`. Points and geometry are in the LIDAR_TOP frame at the
reference time (after augmentation when training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from fusion.config import PipelineConfig
from fusion.preprocess.inputs import SampleInputs
from kernels import BevPoolGeometry


@dataclass(frozen=True, eq=False)
class BatchInputs:
    """A batch of B samples as tensors. Voxels of all samples are concatenated; `voxel_sample`
    (sumV,) int64 says which sample each pillar belongs to. `radar_raster` (B, R, ny, nx)
    is zero for samples without radar."""

    images: Tensor
    camera_present: Tensor
    camera_geometry: tuple[BevPoolGeometry | None, ...]
    voxel_features: Tensor
    voxel_coords: Tensor
    voxel_num_points: Tensor
    voxel_sample: Tensor
    radar_raster: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str) -> BatchInputs:
        return replace(
            self,
            images=self.images.to(device),
            camera_present=self.camera_present.to(device),
            voxel_features=self.voxel_features.to(device),
            voxel_coords=self.voxel_coords.to(device),
            voxel_num_points=self.voxel_num_points.to(device),
            voxel_sample=self.voxel_sample.to(device),
            radar_raster=self.radar_raster.to(device),
        )


def collate_inputs(samples: Sequence[SampleInputs], cfg: PipelineConfig) -> BatchInputs:
    """Stack samples into a batch; `cfg` gives the shapes of absent inputs (voxels with
    P = `max_points_per_voxel`, radar rasters on the BEV grid)."""
    nx, ny = cfg.bev.grid
    max_points = cfg.point_cloud.max_points_per_voxel
    feats, coords, nums, owner = [], [], [], []
    for i, s in enumerate(samples):
        if s.voxels is not None and len(s.voxels):
            feats.append(s.voxels.features)
            coords.append(s.voxels.coords)
            nums.append(s.voxels.num_points)
            owner.append(np.full(len(s.voxels), i, dtype=np.int64))
    if feats:
        vf = torch.from_numpy(np.concatenate(feats).astype(np.float32, copy=False))
        vc = torch.from_numpy(np.concatenate(coords).astype(np.int32, copy=False))
        vn = torch.from_numpy(np.concatenate(nums).astype(np.int32, copy=False))
        vs = torch.from_numpy(np.concatenate(owner))
    else:
        vf = torch.zeros((0, max_points, cfg.point_cloud.features))
        vc = torch.zeros((0, 3), dtype=torch.int32)
        vn = torch.zeros((0,), dtype=torch.int32)
        vs = torch.zeros((0,), dtype=torch.int64)
    radar = np.zeros((len(samples), cfg.radar.raster_channels, ny, nx), dtype=np.float32)
    for i, s in enumerate(samples):
        if s.radar_raster is not None:
            radar[i] = s.radar_raster
    return BatchInputs(
        images=torch.from_numpy(
            np.stack([s.images for s in samples]).astype(np.float32, copy=False)
        ),
        camera_present=torch.from_numpy(np.stack([s.camera_present for s in samples])),
        camera_geometry=tuple(s.camera_geometry for s in samples),
        voxel_features=vf,
        voxel_coords=vc,
        voxel_num_points=vn,
        voxel_sample=vs,
        radar_raster=torch.from_numpy(radar),
    )
