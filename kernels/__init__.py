"""Custom kernels: numpy reference, Numba CPU and Numba CUDA backends.

Every public function takes `backend="auto" | "numpy" | "numba" | "cuda"`; "auto" runs CUDA for
GPU inputs (torch CUDA tensors or `__cuda_array_interface__` arrays) and Numba CPU otherwise.
Importing this package needs numpy and numba only; torch is imported lazily where needed.
"""

from kernels.bev_pool import BevPoolGeometry, bev_pool, bev_pool_backward, precompute_bev_pool
from kernels.points_in_boxes import count_points_in_boxes, points_in_boxes
from kernels.scatter import scatter_bev
from kernels.voxelize import DynamicVoxels, HardVoxels, voxelize

__all__ = [
    "BevPoolGeometry",
    "DynamicVoxels",
    "HardVoxels",
    "bev_pool",
    "bev_pool_backward",
    "count_points_in_boxes",
    "points_in_boxes",
    "precompute_bev_pool",
    "scatter_bev",
    "voxelize",
]
