"""Autograd bridges from the detector to `kernels` (the kernels do the work, forward and back).

`bev_pool_autograd` and `scatter_bev_autograd` take and return torch tensors on any device;
the kernels pick their backend from the tensors (Numba CPU or CUDA). The scatter's backward is
a gather of the upstream gradient at each pillar's column.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kernels import bev_pool_torch, scatter_bev


def bev_pool_autograd(depth: Tensor, context: Tensor, geometry: Any) -> Tensor:
    """depth (Ncam, D, h, w) x context (Ncam, C, h, w) -> BEV (C, ny, nx), differentiable in
    both inputs (`kernels.bev_pool_torch`); `geometry` from `kernels.precompute_bev_pool` over
    the same cameras."""
    return bev_pool_torch(depth.contiguous(), context.contiguous(), geometry)


class _ScatterBEV(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: Tensor, coords: Tensor, grid: tuple[int, int]) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(coords)
        return scatter_bev(features.detach().contiguous(), coords.contiguous(), grid)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (coords,) = ctx.saved_tensors
        ix, iy = coords[:, 0].long(), coords[:, 1].long()
        # The scatter sums pillars into their column, so each pillar's gradient is its column's.
        return grad_out[:, iy, ix].t().contiguous(), None, None


def scatter_bev_autograd(features: Tensor, coords: Tensor, grid: tuple[int, int]) -> Tensor:
    """Pillar features (V, C) at coords (V, 3) int32 (ix, iy, iz) -> (C, ny, nx) with
    `kernels.scatter_bev`, differentiable in `features`; `grid` is (nx, ny)."""
    return _ScatterBEV.apply(features, coords, grid)
