"""The reference engine: the torch modules themselves (CPU or CUDA).

On the CPU it takes and returns numpy arrays. On a CUDA device it keeps tensors there by default
(`outputs="tensor"`): it takes numpy arrays (uploaded) or CUDA tensors (used as they are) and
returns CUDA tensors, so the kernels between the graphs (`kernels.bev_pool`, `scatter_bev`,
which run on device inputs with `backend="auto"`) and the next graph read them without a copy
over PCIe. With `cuda_graphs=True` the static-shape graphs (camera, BEV) are captured once per
input shape with `torch.cuda.CUDAGraph` and replayed; the pillar graph has a dynamic number of
pillars and runs eagerly. A replayed graph's outputs are its static buffers: valid until the
next call of the same graph with the same shapes (the runner consumes them before that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from fusion.engines.device import Outputs
from fusion.model.detector import Detector


class TorchEngine:
    """Runs a `Detector`'s dense stages with torch in eval mode."""

    name = "torch"
    camera_batch: int | None = None  # any number of images

    def __init__(
        self,
        model: Detector,
        device: torch.device | str = "cpu",
        *,
        outputs: Outputs | None = None,
        cuda_graphs: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        on_gpu = self.device.type == "cuda"
        self.outputs: Outputs = outputs or ("tensor" if on_gpu else "numpy")
        if cuda_graphs and not on_gpu:
            raise ValueError("cuda_graphs needs a CUDA device")
        self.cuda_graphs = cuda_graphs
        self._graphs: dict[tuple[Any, ...], tuple[Any, list[torch.Tensor], Any]] = {}

    @property
    def device_name(self) -> str:
        return str(self.device)

    def _t(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.to(self.device, non_blocking=True)
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)

    def _n(self, x: torch.Tensor) -> Any:
        if self.outputs == "tensor":
            return x.detach().float()
        return x.detach().float().cpu().numpy()

    def _call(self, name: str, fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> Any:
        if not self.cuda_graphs:
            return fn(*inputs)
        key = (name, *(tuple(t.shape) for t in inputs), *(t.dtype for t in inputs))
        entry = self._graphs.get(key)
        if entry is None:
            static = [t.clone() for t in inputs]
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm-up off the capture (cuDNN autotuning etc.)
                for _ in range(2):
                    fn(*static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = fn(*static)
            entry = self._graphs[key] = (graph, static, out)
        graph, static, out = entry
        for s, t in zip(static, inputs, strict=True):
            s.copy_(t, non_blocking=True)
        graph.replay()
        return out

    @torch.inference_mode()
    def camera(self, images: NDArray[np.float32] | torch.Tensor) -> tuple[Any, Any]:
        depth, context = self._call("camera", self.model.camera_net, [self._t(images)])
        return self._n(depth), self._n(context)

    @torch.inference_mode()
    def lidar(self, voxels: Any, num_points: Any, coords: Any) -> Any:
        return self._n(self.model.pillar_net(self._t(voxels), self._t(num_points), self._t(coords)))

    @torch.inference_mode()
    def bev(self, *maps: Any) -> tuple[Any, Any, Any]:
        hm, reg, attr = self._call("bev", self.model.bev_net, [self._t(m) for m in maps])
        return self._n(hm), self._n(reg), self._n(attr)
