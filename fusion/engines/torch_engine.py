"""The reference engine: the torch modules themselves (CPU or CUDA)."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from fusion.model.detector import Detector


class TorchEngine:
    """Runs a `Detector`'s dense stages with torch in eval mode; numpy in, numpy out."""

    name = "torch"

    def __init__(self, model: Detector, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def _t(self, x: NDArray[np.generic]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    @staticmethod
    def _n(x: torch.Tensor) -> NDArray[np.float32]:
        return x.detach().float().cpu().numpy()

    @torch.inference_mode()
    def camera(
        self, images: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        depth, context = self.model.camera_net(self._t(images))
        return self._n(depth), self._n(context)

    @torch.inference_mode()
    def lidar(
        self, voxels: NDArray[np.float32], num_points: NDArray[np.int32], coords: NDArray[np.int32]
    ) -> NDArray[np.float32]:
        return self._n(self.model.pillar_net(self._t(voxels), self._t(num_points), self._t(coords)))

    @torch.inference_mode()
    def bev(
        self, *maps: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        hm, reg, attr = self.model.bev_net(*[self._t(m) for m in maps])
        return self._n(hm), self._n(reg), self._n(attr)
