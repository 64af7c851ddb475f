"""Custom kernels: numpy reference, Numba CPU and Numba CUDA backends.

Every public function takes `backend="auto" | "numpy" | "numba" | "cuda"`; "auto" runs CUDA for
GPU inputs (torch CUDA tensors or `__cuda_array_interface__` arrays) and Numba CPU otherwise.
Importing this package needs numpy and numba only; `BevPoolFunction` and `bev_pool_torch`
(in kernels.torch_ops) import torch on first access.

The Numba CPU kernels parallelize where the work splits without races (voxelize's cell and
copy passes, bev_pool by bands of BEV cells and its backward by pixel) over NUMBA_NUM_THREADS
threads; the rest is serial (voxel numbering is order-dependent). On cores busy with other
work, a parallel pass waits for its slowest thread: set NUMBA_NUM_THREADS=1 there.
"""

from typing import Any

from kernels.bev_pool import BevPoolGeometry, bev_pool, bev_pool_backward, precompute_bev_pool
from kernels.nms import bev_iou, circle_nms, nms_bev
from kernels.points_in_boxes import count_points_in_boxes, points_in_boxes
from kernels.radar import rasterize_radar
from kernels.scatter import scatter_bev
from kernels.sweeps import merge_sweeps
from kernels.voxelize import DynamicVoxels, HardVoxels, inside_box, voxelize

__all__ = [
    "BevPoolFunction",
    "BevPoolGeometry",
    "DynamicVoxels",
    "HardVoxels",
    "bev_iou",
    "bev_pool",
    "bev_pool_backward",
    "bev_pool_torch",
    "circle_nms",
    "inside_box",
    "merge_sweeps",
    "count_points_in_boxes",
    "nms_bev",
    "points_in_boxes",
    "precompute_bev_pool",
    "rasterize_radar",
    "scatter_bev",
    "voxelize",
]


def __getattr__(name: str) -> Any:
    # torch is optional at import time: load the autograd wrapper only when asked for
    if name in ("BevPoolFunction", "bev_pool_torch"):
        from kernels import torch_ops

        return getattr(torch_ops, name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
